"""Parsing and validating a scoring request body against the model's input schema.

Both Azure ML body shapes are accepted: ``{"data": [...]}`` and
``{"Inputs": {"data": [...]}, "GlobalParameters": {"method": ...}}``. Each
row is an object keyed by column name, in any key order. Categories not
seen in training are accepted by default and score as if the column were
missing a known value; ``unknown_categories="reject"`` turns them into 422s.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from opml.errors import OpmlError

METHODS = ("predict", "predict_proba")


class ScoringError(OpmlError):
    """A client error in a scoring request, with the HTTP status of the response."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message, status=status)


def parse_body(body: bytes) -> tuple[list, str]:
    """Return the rows and the method of a request body."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ScoringError(f"The request body is not valid JSON: {error}. Send {{\"data\": [{{...}}]}}.", 400) from error

    if not isinstance(document, dict):
        raise ScoringError(
            f"The request body must be a JSON object with \"data\" or \"Inputs\"; received {_json_type(document)}.", 400
        )
    parameters = document.get("GlobalParameters") or {}
    if not isinstance(parameters, dict):
        raise ScoringError('"GlobalParameters" must be an object such as {"method": "predict_proba"}.')
    method = parameters.get("method", "predict")
    if method not in METHODS:
        raise ScoringError(f"Unknown method {method!r} in GlobalParameters; use \"predict\" or \"predict_proba\".")
    if "Inputs" in document:
        inputs = document["Inputs"]
        if not isinstance(inputs, dict) or "data" not in inputs:
            raise ScoringError('"Inputs" must be an object with a "data" list of rows.')
        rows = inputs["data"]
    elif "data" in document:
        rows = document["data"]
    else:
        keys = ", ".join(repr(key) for key in list(document)[:5])
        found = f"it has keys {keys}" if keys else "it is an empty object"
        raise ScoringError(f'The request body needs a "data" list of rows (or "Inputs": {{"data": ...}}); {found}.')

    if not isinstance(rows, list):
        raise ScoringError(f'"data" must be a list of row objects; received {_json_type(rows)}.')
    if not rows:
        raise ScoringError('"data" is empty; send at least one row.')
    return rows, method


def rows_to_frame(rows: list, schema: dict, *, unknown_categories: str = "accept") -> pd.DataFrame:
    """Check every row against the schema and return them as a DataFrame in schema column order."""
    features = schema["features"]
    names = [feature["name"] for feature in features]
    expected = set(names)
    columns: dict[str, list] = {name: [] for name in names}

    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ScoringError(f"Row {index} must be an object keyed by column name; received {_json_type(row)}.")
        keys = row.keys()
        if keys != expected:
            missing = [name for name in names if name not in row]
            unknown = sorted(set(keys) - expected)
            if missing:
                raise ScoringError(f"Row {index} is missing column(s) {', '.join(map(repr, missing))}.")
            raise ScoringError(
                f"Row {index} has unknown column(s) {', '.join(map(repr, unknown))}; the model takes {', '.join(names)}."
            )
        for feature in features:
            columns[feature["name"]].append(_check_value(row[feature["name"]], feature, index, unknown_categories))

    return pd.DataFrame(columns)


def _check_value(value, feature: dict, index: int, unknown_categories: str):
    name = feature["name"]
    if value is None:
        return None
    kind = feature["dtype"]

    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScoringError(
                f"Row {index}, column {name!r}: expected a number, received {value!r}."
            )
        if not math.isfinite(value):
            raise ScoringError(f"Row {index}, column {name!r}: {value!r} is not a finite number.")
        return value

    if isinstance(value, bool):
        value = str(value)
    if not isinstance(value, (str, int, float)):
        raise ScoringError(f"Row {index}, column {name!r}: expected a string, received {_json_type(value)}.")
    text = str(value)
    if unknown_categories == "reject" and text not in feature.get("categories", []):
        allowed = ", ".join(feature.get("categories", [])[:20])
        raise ScoringError(f"Row {index}, column {name!r}: {text!r} was not seen in training; use one of {allowed}.")
    return text


def _json_type(value) -> str:
    """Name a JSON value's type with its article: "an object", "a list"."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
