"""A posting with U+0000 in it (copied out of a binary file, or a UTF-16 file read as UTF-8, which has one
after every ASCII character) entered through the CLI, the LAN page's form or POST /api/v1/predict.
PostgreSQL text cannot hold U+0000, so the MQTT contract refuses it, and a row holding it would stay
on the device for good (the upload pipeline skips rows the contract refuses). The device removes the
NULs when it prepares the input, says so, and what it stores syncs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from device.predict_command import predict
from device.store import PredictionStore
from device.sync.upload import UploadPipeline
from tests.daemon.conftest import app_and_daemon_for
from tests.sync.conftest import Clock, MemoryTransport

TYPED = "Data scientist\x00 with statistics, pandas\x00\x00 and regression for product experiments."
STORED = "Data scientist with statistics, pandas and regression for product experiments."
NOTE = "3 NUL characters (U+0000) removed"


def through_the_cli(tmp_path: Path, bundle: Path) -> Path:
    database = tmp_path / "cli.db"
    config = tmp_path / "careeredge.toml"
    config.write_text(f'[store]\npath = "{database}"\n')
    result = CliRunner().invoke(predict, ["--model", str(bundle), "--config", str(config), "--json", TYPED])
    assert result.exit_code == 2, result.output  # predicted, and the change to the input reported
    assert result.stderr == f"Note: argument 1: {NOTE}\n"
    return database


def through_the_form(tmp_path: Path, bundle: Path) -> Path:
    app, daemon = app_and_daemon_for(tmp_path, bundle)
    try:
        client = app.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
        response = client.post("/", data={"text": TYPED, "csrf_token": token})
        assert response.status_code == 200 and 'id="result-label"' in response.get_data(as_text=True)
    finally:
        daemon.close()
    return daemon.config.store.path


def through_the_api(tmp_path: Path, bundle: Path) -> Path:
    app, daemon = app_and_daemon_for(tmp_path, bundle)
    try:
        answer = app.test_client().post("/api/v1/predict", json={"text": TYPED}).get_json()
        assert answer["stored"] is True and answer["notes"] == [f"text: {NOTE}"], answer
    finally:
        daemon.close()
    return daemon.config.store.path


@pytest.mark.parametrize("enter", [through_the_cli, through_the_form, through_the_api])
def test_a_posting_with_nul_characters_is_stored_without_them_and_syncs(tmp_path, tiny_bundle, enter):
    database = enter(tmp_path, tiny_bundle)
    clock = Clock()
    transport = MemoryTransport(clock)  # decodes each batch as the collector does
    with PredictionStore(database) as store:
        [row] = store.unsynced()
        assert row["text"] == STORED
        pipeline = UploadPipeline(store, transport, "pi-1", clock=clock)
        assert pipeline.step() == 1 and pipeline.counters.invalid_rows == 0
        [batch] = transport.sent
        assert [record["text"] for record in batch["records"]] == [STORED]
        pipeline.confirm(batch["batch_id"])
        assert store.count_unsynced() == 0
