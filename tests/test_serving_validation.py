"""Parsing and validation of scoring request bodies, without a server."""

from __future__ import annotations

import json

import pytest

from opml.serving.validation import ScoringError, parse_body, rows_to_frame

SCHEMA = {
    "features": [
        {"name": "age", "dtype": "integer", "categories": None, "min": 17, "max": 98},
        {"name": "job", "dtype": "string", "categories": ["admin.", "technician"], "min": None, "max": None},
    ]
}


def test_both_body_shapes_parsed() -> None:
    rows = [{"age": 30, "job": "admin."}]

    assert parse_body(json.dumps({"data": rows}).encode()) == (rows, "predict")
    assert parse_body(
        json.dumps({"Inputs": {"data": rows}, "GlobalParameters": {"method": "predict_proba"}}).encode()
    ) == (rows, "predict_proba")


def test_key_order_does_not_matter() -> None:
    frame = rows_to_frame([{"job": "admin.", "age": 30}, {"age": 40, "job": "technician"}], SCHEMA)

    assert list(frame.columns) == ["age", "job"]
    assert frame["age"].tolist() == [30, 40]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"rows": []}', 422, 'needs a "data" list'),
        (b'{"data": {}}', 422, '"data" must be a list'),
        (b'{"data": []}', 422, '"data" is empty'),
        (b'{"Inputs": []}', 422, '"Inputs" must be an object'),
        (b'{"Inputs": {"data": [{}]}, "GlobalParameters": {"method": "explain"}}', 422, "Unknown method 'explain'"),
    ],
)
def test_bad_bodies_rejected(body: bytes, status: int, message: str) -> None:
    with pytest.raises(ScoringError, match=message) as raised:
        parse_body(body)

    assert raised.value.status == status


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"age": 30}], "Row 0 is missing column\\(s\\) 'job'"),
        ([{"age": 30, "job": "admin.", "salary": 1}], "Row 0 has unknown column\\(s\\) 'salary'"),
        ([{"age": "thirty", "job": "admin."}], "Row 0, column 'age': expected a number, received 'thirty'"),
        ([{"age": True, "job": "admin."}], "column 'age': expected a number"),
        ([{"age": 30, "job": ["admin."]}], "column 'job': expected a string, received a list"),
        ([5], "Row 0 must be an object"),
    ],
)
def test_bad_rows_rejected(rows: list, message: str) -> None:
    with pytest.raises(ScoringError, match=message) as raised:
        rows_to_frame(rows, SCHEMA)

    assert raised.value.status == 422


def test_unknown_category_policy() -> None:
    rows = [{"age": 30, "job": "astronaut"}]

    assert rows_to_frame(rows, SCHEMA)["job"].tolist() == ["astronaut"]
    with pytest.raises(ScoringError, match="'astronaut' was not seen in training; use one of admin., technician"):
        rows_to_frame(rows, SCHEMA, unknown_categories="reject")


def test_null_values_pass_for_imputation() -> None:
    frame = rows_to_frame([{"age": None, "job": None}], SCHEMA)

    assert frame.isna().all(axis=None)
