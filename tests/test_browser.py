"""The running dashboard, started as the README starts it, in Debian's headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("OPML_REQUIRE_TOOLS") == "1":
        raise RuntimeError(f"{CHROMIUM} is missing and OPML_REQUIRE_TOOLS=1: install Debian's chromium package.")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    """Run ``opml dashboard`` on a free loopback port with a new workspace; yield its URL."""
    port = free_port()
    log_path = tmp_path / "dashboard.log"
    environment = {**os.environ, "OPML_HOME": str(tmp_path / "workspace")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "opml", "dashboard", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log_path)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the dashboard exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the dashboard did not answer within {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def choose_option(page, box: str, option: str, attempts: int = 5) -> None:
    """Select ``option`` in the select box labelled ``box``.

    On a loaded machine the list can close right after it opens, while the page is still
    drawing, so the box is opened again until the option can be clicked.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        page.get_by_role("combobox", name=box).click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail(f"the option {option!r} of the box {box!r} did not open in {attempts} attempts")


@pytest.fixture
def page() -> Iterator:
    """Yield a new page of Debian's headless Chromium; the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_datasets_page_lists_sample(dashboard: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard}/datasets")

    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible(timeout=30_000)
    listing = page.get_by_test_id("stDataFrame").first
    # The data grid draws on a canvas; its accessible cells carry the text.
    expect(listing.get_by_text("bankmarketing", exact=True)).to_be_attached(timeout=30_000)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("bankmarketing")
    expect(page.get_by_test_id("stMetric").first).to_contain_text("32,950")
    expect(page.get_by_text("Distributions")).to_be_visible()

    page.goto(dashboard)
    expect(page.get_by_role("heading", name="Recent activity")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetric").first).to_contain_text("1")


def test_pipelines_page_saves_a_pipeline(dashboard: str, page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{dashboard}/pipelines")

    expect(page.get_by_role("heading", name="Pipelines", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_role("tab", name="Schedules")).to_be_visible()
    expect(page.get_by_label("Pipeline name").first).to_have_value("Bankmarketing Train")
    page.get_by_role("button", name="Save pipeline").first.click()

    expect(page.get_by_text("Saved pipeline Bankmarketing Train:1.")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Submit run")).to_be_visible()
    expect(page.get_by_role("button", name="Publish")).to_be_visible()


def test_published_pipeline_buttons_act_on_the_selection(dashboard: str, page, tmp_path: Path) -> None:
    import opml
    from opml.automl.settings import AutoMLSettings
    from opml.pipelines.definition import PipelineDefinition
    from playwright.sync_api import expect

    workspace = opml.connect(tmp_path / "workspace")
    definition = PipelineDefinition(
        dataset_name="bankmarketing", automl=AutoMLSettings(label_column_name="y"), model_name="bm-model"
    )
    workspace.pipelines.create("Bankmarketing Train", definition)
    older = workspace.pipelines.publish("Bankmarketing Train")
    newer = workspace.pipelines.publish("Bankmarketing Train")
    try:
        page.goto(f"{dashboard}/pipelines")
        # This button is the last one on the tab, so once it shows the box above it is drawn.
        expect(page.get_by_role("button", name="Submit run of the published pipeline")).to_be_visible(timeout=30_000)
        choose_option(page, "Published pipeline", f"Bankmarketing Train:1 ({older.id[:8]})")
        expect(page.get_by_role("combobox", name="Published pipeline")).to_have_value(
            f"Bankmarketing Train:1 ({older.id[:8]})", timeout=30_000
        )
        expect(page.get_by_text("Status: Active")).to_be_visible(timeout=30_000)

        for label, status in (("Disable", "Disabled"), ("Enable", "Active"), ("Disable", "Disabled")):
            page.get_by_role("button", name=label, exact=True).click()
            expect(page.get_by_text(f"Status: {status}")).to_be_visible(timeout=30_000)

        assert workspace.pipelines.published(older.id).status == "Disabled"
        assert workspace.pipelines.published(newer.id).status == "Active"
    finally:
        workspace.api.stop()
