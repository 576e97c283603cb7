"""Client snippets for a published pipeline endpoint: curl and Python with requests."""

from __future__ import annotations

import json
import shlex

TOKEN_VARIABLE = "OPML_TOKEN"


def request_body(experiment: str, parameters: dict | None = None) -> dict:
    return {"ExperimentName": experiment, "ParameterAssignments": parameters or {}}


def python_snippet(endpoint: str, experiment: str, parameters: dict | None = None) -> str:
    """Return the ``requests.post(endpoint, headers=auth_header, json=...)`` call of Azure ML notebooks, token from the environment."""
    body = json.dumps(request_body(experiment, parameters), indent=4)
    return (
        "import os\n\nimport requests\n\n"
        f"rest_endpoint = {endpoint!r}\n"
        f"auth_header = {{\"Authorization\": f\"Bearer {{os.environ['{TOKEN_VARIABLE}']}}\"}}\n\n"
        f"response = requests.post(rest_endpoint, headers=auth_header, json={body})\n"
        "response.raise_for_status()\n"
        "run_id = response.json()[\"Id\"]\n"
        "print(\"Submitted pipeline run\", run_id)\n"
    )


def curl_snippet(endpoint: str, experiment: str, parameters: dict | None = None) -> str:
    body = json.dumps(request_body(experiment, parameters))
    return (
        f"curl -sS -X POST {shlex.quote(endpoint)} \\\n"
        f"  -H \"Authorization: Bearer ${TOKEN_VARIABLE}\" \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
