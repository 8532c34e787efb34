"""Headless Chromium (Debian package, driven by Playwright) against a real daemon subprocess."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser():
    require(Path(CHROMIUM).is_file() and shutil.which("chromium") is not None, f"Debian chromium at {CHROMIUM}")
    from playwright import sync_api  # dev extra: a missing package is an error, never a skip

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def first_data_science_posting(kaggle_csv: Path) -> str:
    with kaggle_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["positionName"].startswith("Senior Data Scientist"):
                return row["description"]
    raise AssertionError("no Data Scientist posting in the 2025 CSV")


def test_classify_a_real_2025_posting_in_chromium(browser, daemon_factory, tiny_bundle, kaggle_csv, tmp_path):
    daemon = daemon_factory(tiny_bundle)
    posting = first_data_science_posting(kaggle_csv)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(daemon.url)
    page.fill("#text", posting)
    page.fill("#skills", "Python, SQL")
    page.click("button[type=submit]")
    page.wait_for_selector("#result")
    label = page.inner_text("#result-label")
    assert label in ("Software Engineering", "Data Science")
    assert page.locator(".probbar .seg").count() == 2
    assert page.locator("#posting mark").count() >= 3  # the skills it names are highlighted
    assert "Next skills to learn" in page.inner_text("#advice")
    assert "Python" in page.inner_text("#advice")
    page.screenshot(path=str(tmp_path / "classify.png"), full_page=True)

    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    phone.goto(daemon.url + "history")
    assert phone.locator("#history tbody tr").count() == 1
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"history page scrolls sideways on a phone ({width}px)"
    phone.screenshot(path=str(tmp_path / "history-phone.png"), full_page=True)
    assert (tmp_path / "classify.png").stat().st_size > 10_000


def test_script_typed_in_the_input_is_shown_as_text(browser, daemon_factory, tiny_bundle):
    daemon = daemon_factory(tiny_bundle)
    page = browser.new_page()
    page.goto(daemon.url)
    attack = "<script>window.__pwned = 1</script> Data scientist with statistics and SQL"
    page.fill("#text", attack)
    page.click("button[type=submit]")
    page.wait_for_selector("#result")
    assert page.evaluate("window.__pwned") is None
    assert page.input_value("#text") == attack  # echoed back as text, not markup
    page.goto(daemon.url + "history")
    assert "<script>window.__pwned = 1</script>" in page.inner_text("#history")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#history script").count() == 0
