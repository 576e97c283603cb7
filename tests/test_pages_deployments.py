"""The Deployments page under AppTest, operating real scoring services."""

from __future__ import annotations

import time

import requests

from tests.conftest import SCORING_EXAMPLE
from tests.test_pages import metric_values, open_page, texts
from tests.test_pages_automl import button


def test_page_without_models(workspace) -> None:
    app = open_page("pages/deployments.py")

    assert "Register a model first" in texts(app)
    assert "Nothing is deployed yet." in texts(app)


def test_page_deploys_and_operates(trained_workspace, monkeypatch) -> None:
    workspace, run = trained_workspace
    monkeypatch.setenv("OPML_HOME", str(workspace.home))
    if not workspace.models.list("page-deploy"):
        workspace.models.register(run.id, "page-deploy")
    try:
        app = open_page("pages/deployments.py")
        app.selectbox(key="deploy_model").select("page-deploy:1").run()
        app.text_input(key="deploy_name").input("page-service")
        button(app, "Deploy").click().run()

        assert not app.exception, app.exception
        assert "Deployed page-deploy:1 as page-service." in texts(app)
        app.selectbox(key="selected_deployment").select("page-service").run()
        assert metric_values(app)["State"] == "Healthy"
        assert app.query_params["deployment"] == "page-service"
        linked = open_page("pages/deployments.py", {"deployment": "no-such-service"})
        assert any("Deployment 'no-such-service' from the link was not found" in item.value for item in linked.warning)
        deployment = workspace.deployments.get("page-service")
        assert deployment.primary_key not in "\n".join(block.value for block in app.code)

        app.toggle(key="reveal_page-service").set_value(True).run()
        assert deployment.primary_key in [block.value for block in app.code]

        app.toggle(key="insights_page-service").set_value(True).run()
        assert workspace.deployments.get("page-service").insights_enabled
        headers = {"Authorization": f"Bearer {deployment.primary_key}"}
        for _ in range(3):
            requests.post(deployment.scoring_uri, json=SCORING_EXAMPLE, headers=headers, timeout=10)

        time.sleep(1.5)
        app.run()
        assert len(app.get("plotly_chart")) == 3

        button(app, "Stop").click().run()
        assert metric_values(app)["State"] == "Stopped"
        button(app, "Start").click().run()
        assert metric_values(app)["State"] == "Healthy"

        app.text_input(key="delete_deployment_confirmation").input("page-service").run()
        button(app, "Delete page-service").click().run()
        assert not app.exception, app.exception
        assert "Deleted page-service." in texts(app)
        assert workspace.deployments.list() == []
    finally:
        for item in workspace.deployments.list():
            workspace.deployments.delete(item.name)
