"""The Textual TUI driven by its pilot, with the real tiny model and a real SQLite file."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Input, Static, TabbedContent, TextArea

from device.store import PredictionStore
from device.tui.app import CareerEdgeApp
from tests.daemon.conftest import make_config

DS_TEXT = "Data scientist: statistics, pandas, SQL, forecasting and A/B testing."


def run(coroutine):
    return asyncio.run(coroutine)


def test_classify_shows_class_confidence_and_advice_and_stores_it(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)

    async def scenario():
        app = CareerEdgeApp(config, pinned_bundle=True)
        async with app.run_test(size=(140, 45)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "ready" in str(app.query_one("#result", Static).content)
            await pilot.press("ctrl+r")  # nothing typed yet
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "empty text" in str(app.query_one("#result", Static).content)
            app.query_one("#posting", TextArea).text = DS_TEXT + " [b]markup[/b] <script>x</script>"
            app.query_one("#skills", Input).value = "SQL, Python"
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown = str(app.query_one("#result", Static).content)
            assert "Data Science" in shown and "%" in shown
            assert "Career advice" in shown and "You have 1 of them" in shown
            assert app.last_result.stored

            await pilot.press("f3")
            await pilot.pause()
            assert app.query_one(TabbedContent).active == "history"
            assert app.query_one("#history-table", DataTable).row_count == 1

            await pilot.press("ctrl+f")  # filter: Software Engineering only
            await pilot.pause()
            assert app.query_one("#history-table", DataTable).row_count == 0

            await pilot.press("f4")
            await pilot.pause()
            status = str(app.query_one("#status-text", Static).content)
            assert "tiny_model@1" in status and "rows      1" in status

            await pilot.press("ctrl+q")

    run(scenario())
    store = PredictionStore(config.store.path)
    (row,) = store.recent()
    assert row["source"] == "tui" and row["label"] == 1


def test_footer_lists_the_key_bindings(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)

    async def scenario():
        app = CareerEdgeApp(config, pinned_bundle=True)
        async with app.run_test(size=(160, 40)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            keys = {binding.key for binding in app.BINDINGS}
            assert {"ctrl+r", "f3", "f4", "ctrl+q"} <= keys
            footer_text = " ".join(str(w.render()) for w in app.query("FooterKey"))
            assert "Classify" in footer_text and "History" in footer_text

    run(scenario())


def test_degraded_mode_is_explained(tmp_path):
    config = make_config(tmp_path, None)  # no bundle at all

    async def scenario():
        app = CareerEdgeApp(config)
        async with app.run_test(size=(140, 45)) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            shown = str(app.query_one("#result", Static).content)
            assert "Degraded" in shown and "How to fix" in shown
            await pilot.press("ctrl+r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "No model loaded" in str(app.query_one("#result", Static).content)

    run(scenario())
