"""Swagger 2.0 and OpenAPI 3 documents of a deployment, generated from the model's schema."""

from __future__ import annotations

import copy

TYPES = {"integer": "integer", "number": "number", "string": "string", "boolean": "string"}


def _row_schema(schema: dict) -> dict:
    properties = {}
    for feature in schema["features"]:
        item: dict = {"type": TYPES[feature["dtype"]]}
        if feature["dtype"] == "integer":
            item["format"] = "int64"
        elif feature["dtype"] == "number":
            item["format"] = "double"
        if feature.get("categories") is not None:
            item["enum"] = list(feature["categories"])
        if feature.get("min") is not None:
            item["description"] = f"seen in training: {feature['min']:g} to {feature['max']:g}"
        properties[feature["name"]] = item
    return {
        "type": "object",
        "required": [feature["name"] for feature in schema["features"]],
        "properties": properties,
        "example": schema["example"],
    }


def _definitions(schema: dict) -> dict:
    return {
        "ServiceInput": {
            "type": "object",
            "required": ["data"],
            "properties": {"data": {"type": "array", "items": {"$ref": "#/definitions/InputRow"}}},
            "example": {"data": [schema["example"]]},
        },
        "InputRow": _row_schema(schema),
        "ServiceOutput": {
            "type": "object",
            "properties": {
                "Results": {
                    "type": "array",
                    "description": (
                        "One entry per input row, in input order: the predicted class, or with "
                        f"method predict_proba a list of probabilities of the classes {schema['classes']}."
                    ),
                    "items": {},
                }
            },
            "example": {"Results": [schema["classes"][0]]},
        },
        "ErrorResponse": {"type": "object", "properties": {"message": {"type": "string"}}},
    }


def swagger2(schema: dict, *, title: str, version: str, auth_enabled: bool) -> dict:
    """Return the Swagger 2.0 document of the scoring API."""
    responses = {
        "200": {"description": "Predictions, one per input row", "schema": {"$ref": "#/definitions/ServiceOutput"}},
        "400": {"description": "Body is not JSON or not a JSON object", "schema": {"$ref": "#/definitions/ErrorResponse"}},
        "413": {"description": "Body larger than the limit", "schema": {"$ref": "#/definitions/ErrorResponse"}},
        "415": {"description": "Content type is not application/json", "schema": {"$ref": "#/definitions/ErrorResponse"}},
        "422": {"description": "Rows do not match the model's schema", "schema": {"$ref": "#/definitions/ErrorResponse"}},
    }
    score = {
        "operationId": "RunMLService",
        "summary": "Score rows with the deployed model",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "parameters": [{"in": "body", "name": "serviceInputPayload", "required": True, "schema": {"$ref": "#/definitions/ServiceInput"}}],
        "responses": responses,
    }
    document = {
        "swagger": "2.0",
        "info": {"title": title, "description": "Scoring API of an opml deployment", "version": version},
        "schemes": ["http"],
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "summary": "Health check",
                    "produces": ["application/json"],
                    "responses": {"200": {"description": "The service is healthy", "schema": {"type": "string", "example": "Healthy"}}},
                }
            },
            "/score": {"post": score},
        },
        "definitions": _definitions(schema),
    }
    if auth_enabled:
        document["securityDefinitions"] = {
            "Bearer": {"type": "apiKey", "name": "Authorization", "in": "header", "description": "Bearer <key>"}
        }
        score["security"] = [{"Bearer": []}]
        responses["401"] = {"description": "Missing or wrong key", "schema": {"$ref": "#/definitions/ErrorResponse"}}
    return document


def openapi3(schema: dict, *, title: str, version: str, auth_enabled: bool) -> dict:
    """Return the OpenAPI 3.0 document of the scoring API."""
    swagger = swagger2(schema, title=title, version=version, auth_enabled=auth_enabled)
    components = {"schemas": _rewrite_refs(copy.deepcopy(swagger["definitions"]))}
    if auth_enabled:
        components["securitySchemes"] = {"Bearer": {"type": "http", "scheme": "bearer"}}

    paths: dict = {}
    for path, operations in swagger["paths"].items():
        paths[path] = {}
        for verb, operation in operations.items():
            converted = {key: value for key, value in operation.items() if key not in ("consumes", "produces", "parameters", "responses")}
            if verb == "post":
                converted["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ServiceInput"}}},
                }
            converted["responses"] = {
                status: {
                    "description": response["description"],
                    "content": {"application/json": {"schema": _rewrite_refs(copy.deepcopy(response["schema"]))}},
                }
                for status, response in operation["responses"].items()
            }
            paths[path][verb] = converted
    return {"openapi": "3.0.3", "info": swagger["info"], "paths": paths, "components": components}


def _rewrite_refs(node):
    if isinstance(node, dict):
        return {
            key: (value.replace("#/definitions/", "#/components/schemas/") if key == "$ref" else _rewrite_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node
