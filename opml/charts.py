"""Plotly figures of a child run's or model's evaluation charts, from their stored chart data."""

from __future__ import annotations

import plotly.graph_objects as go

HEIGHT = 320


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title=title,
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def roc_curve(charts: dict) -> go.Figure:
    figure = go.Figure()
    for curve in charts["roc"]:
        figure.add_scatter(x=curve["fpr"], y=curve["tpr"], mode="lines", name=f"{curve['class']} (AUC {curve['auc']:.3f})")
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot", "color": "grey"})
    return _layout(figure, "ROC curve", "false positive rate", "true positive rate")


def precision_recall_curve(charts: dict) -> go.Figure:
    figure = go.Figure()
    for curve in charts["precision_recall"]:
        figure.add_scatter(
            x=curve["recall"],
            y=curve["precision"],
            mode="lines",
            name=f"{curve['class']} (AP {curve['average_precision']:.3f})",
        )
    return _layout(figure, "Precision-recall curve", "recall", "precision")


def confusion_matrix(charts: dict) -> go.Figure:
    classes = charts["classes"]
    counts = charts["confusion_matrix"]
    figure = go.Figure(
        go.Heatmap(
            z=counts,
            x=classes,
            y=classes,
            text=[[f"{value:,}" for value in row] for row in counts],
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, "Confusion matrix", "predicted class", "true class")


def calibration_curve(charts: dict) -> go.Figure:
    figure = go.Figure()
    for curve in charts["calibration"]:
        figure.add_scatter(x=curve["mean_predicted"], y=curve["fraction_positive"], mode="lines+markers", name=curve["class"])
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line={"dash": "dot", "color": "grey"})
    return _layout(figure, "Calibration", "mean predicted probability", "observed fraction")


def gains_curve(charts: dict) -> go.Figure:
    figure = go.Figure()
    for curve in charts["gains"]:
        figure.add_scatter(x=curve["fraction"], y=curve["gain"], mode="lines+markers", name=f"gain, {curve['class']}")
        figure.add_scatter(
            x=curve["fraction"], y=curve["lift"], mode="lines", name=f"lift, {curve['class']}", yaxis="y2", line={"dash": "dash"}
        )
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="random", line={"dash": "dot", "color": "grey"})
    figure.update_layout(yaxis2={"overlaying": "y", "side": "right", "title": "lift"})
    return _layout(figure, "Cumulative gains and lift", "fraction of rows, highest scores first", "fraction of class found")


def feature_importance(importance: list[dict], top: int = 20) -> go.Figure:
    shown = importance[:top][::-1]
    figure = go.Figure(go.Bar(x=[item["importance"] for item in shown], y=[item["feature"] for item in shown], orientation="h"))
    return _layout(figure, "Permutation feature importance", "drop in primary metric when shuffled", "")


ALL_CHARTS = (roc_curve, precision_recall_curve, confusion_matrix, calibration_curve, gains_curve)


def request_rate(summary) -> go.Figure:
    figure = go.Figure(go.Bar(x=summary["at"], y=summary["requests_per_second"], name="requests/s"))
    return _layout(figure, "Request rate", "time (UTC)", "requests per second")


def latency_percentiles(summary) -> go.Figure:
    figure = go.Figure()
    for column, name in (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"), ("latency_p99_ms", "p99")):
        figure.add_scatter(x=summary["at"], y=summary[column], mode="lines+markers", name=name)
    return _layout(figure, "Latency percentiles", "time (UTC)", "milliseconds")


def error_rate(summary) -> go.Figure:
    figure = go.Figure(go.Scatter(x=summary["at"], y=summary["error_rate"] * 100, mode="lines+markers", name="errors"))
    figure.update_yaxes(range=[0, 100])
    return _layout(figure, "Error rate", "time (UTC)", "% of requests with status ≥ 400")


def latency_histogram(results: list) -> go.Figure:
    figure = go.Figure()
    for result in results:
        figure.add_histogram(x=result.latencies_ms, name=result.tool + " " + result.id[-4:], opacity=0.6, nbinsx=50)
    figure.update_layout(barmode="overlay")
    return _layout(figure, "Latency histogram", "latency (ms)", "requests")


def latency_cdf(results: list) -> go.Figure:
    figure = go.Figure()
    for result in results:
        ordered = sorted(result.latencies_ms)
        if ordered:
            step = max(1, len(ordered) // 500)
            shown = ordered[::step] + [ordered[-1]]
            fractions = [min(1.0, (index * step + 1) / len(ordered)) for index in range(len(shown) - 1)] + [1.0]
            figure.add_scatter(x=shown, y=fractions, mode="lines", name=result.tool + " " + result.id[-4:])
    return _layout(figure, "Latency CDF", "latency (ms)", "fraction of requests")


def _series_chart(results: list, column: str, title: str, y_title: str) -> go.Figure:
    figure = go.Figure()
    for result in results:
        figure.add_scatter(
            x=[point["second"] for point in result.series],
            y=[point[column] for point in result.series],
            mode="lines+markers",
            name=result.tool + " " + result.id[-4:],
        )
    return _layout(figure, title, "second of the test", y_title)


def latency_over_time(results: list) -> go.Figure:
    return _series_chart(results, "mean_latency_ms", "Latency over time", "mean latency (ms)")


def throughput_over_time(results: list) -> go.Figure:
    return _series_chart(results, "requests_per_second", "Throughput over time", "requests per second")
