"""The collector keeps shadow predictions and device skew (both engines); `monitor` reads them back."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.collector.collector import Collector
from shared.bundle import verify_bundle
from shared.mqtt.client import BrokerSettings
from shared.mqtt.contract import PREDICTION_BATCH, ContractError, Topics
from tests.monitoring.fleet_traffic import batches, postings

SKEW = {
    "window": "last 500 predictions",
    "computed_at": "2026-07-19T08:00:00Z",
    "documents": 60,
    "threshold": 0.3,
    "alerts": ["skill:LangChain"],
    "worst": [{"feature": "skill:LangChain", "value": 0.41, "threshold": 0.3}],
}


def collect(storage, messages) -> list[str]:
    collector = Collector(storage, BrokerSettings(host="127.0.0.1", port=1))
    return [collector.handle(topic, payload) for topic, payload in messages]


def collector_store_and_splits(tmp_path, kaggle_csv):
    """A SQLite collector store holding 60 logged predictions (with shadows and a device's skew), and
    the 2025 splits the monitoring baseline comes from."""
    from cloud.collector.storage import open_storage
    from cloud.data.prepare import run_label, run_prepare

    store_path = tmp_path / "collector.sqlite"
    storage = open_storage(str(store_path))
    storage.open()
    collect(storage, batches(postings(kaggle_csv, 60), skew=SKEW))
    storage.close()
    run_prepare(kaggle_csv, tmp_path / "interim")
    run_label(tmp_path / "interim" / "postings_2025.jsonl", tmp_path / "processed", (0.7, 0.15, 0.15), 2025)
    return store_path, tmp_path / "processed" / "splits"


def test_shadow_and_skew_are_stored_once_per_prediction(storage, kaggle_csv):
    messages = batches(postings(kaggle_csv, 60), skew=SKEW)
    assert set(collect(storage, messages)) == {"stored"}
    assert set(collect(storage, messages[:1])) == {"duplicate"}  # a redelivery changes nothing
    rows = storage.logged_predictions()
    assert len(rows) == 60 and rows == sorted(rows, key=lambda r: r["created_at"])
    shadowed = [r for r in rows if r["shadow_model"]]
    assert len(shadowed) == 60 and all(r["shadow_model"] == "model_b_v3" for r in shadowed)
    assert sum(1 for r in rows if (r["shadow_p1"] >= 0.5) != (r["label"] == 1)) == 20
    (skew,) = storage.device_skew()
    assert skew["device_id"] == "pi-1" and skew["alerts"] == 1 and skew["summary"]["worst"][0]["value"] == 0.41


def test_logged_predictions_read_in_chunks_are_the_whole_read_in_order(storage, kaggle_csv):
    """Each engine reads one statement a chunk at a time (SQLite: fetchmany; PostgreSQL: a server-side
    cursor); the chunks joined are exactly the whole read, texts dropped the same way for older rows."""
    collect(storage, batches(postings(kaggle_csv, 60), skew=SKEW))
    whole = storage.logged_predictions()
    chunks = list(storage.logged_prediction_chunks(size=7))
    assert [len(c) for c in chunks] == [7] * 8 + [4] and [r for c in chunks for r in c] == whole
    cut = sorted(r["received_at"] for r in whole)[30]
    later = [r for c in storage.logged_prediction_chunks(texts_from=cut, size=16) for r in c]
    assert later == storage.logged_predictions(texts_from=cut)
    assert all((r["text"] is not None) == (r["received_at"] >= cut) for r in later)
    assert storage.prediction_count() == 60  # the chunked read left the store usable


def test_malformed_monitoring_fields_are_dead_letters_not_crashes(storage, kaggle_csv):
    (topic, payload), *_ = batches(postings(kaggle_csv, 3), skew=SKEW)
    batch = json.loads(payload)
    batch["records"][0]["shadow"] = {"model_name": "b", "model_version": None, "probabilities": [1.5, -0.5]}
    batch["skew"] = {"window": "w"}  # missing fields
    outcome = collect(storage, [(topic, json.dumps(batch).encode())])
    assert outcome == ["rejected:schema"]
    assert storage.prediction_count() == 0 and storage.rejection_counts() == {"schema": 1}
    with pytest.raises(ContractError, match="probabilities"):
        PREDICTION_BATCH.validate({**batch, "skew": None})
    old_device = json.loads(payload)  # a device without shadow or skew is still accepted
    for record in old_device["records"]:
        record.pop("shadow")
    old_device.pop("skew", None)
    assert collect(storage, [(Topics.device_predictions("pi-1"), json.dumps(old_device).encode())]) == ["stored"]


def test_monitor_reports_field_skew_shadow_agreement_and_writes_signed_bundle_trends(
    tmp_path, kaggle_csv, repo_root, monkeypatch
):
    store_path, splits = collector_store_and_splits(tmp_path, kaggle_csv)
    bundle = tmp_path / "bundle"
    shutil.copytree(repo_root / "device" / "embedded_bundle", bundle)
    args = ["monitor", "--store", str(store_path), "--splits", str(splits)]
    args += ["--out", str(tmp_path / "field.json"), "--trends", str(tmp_path / "trends.json"), "--bundle", str(bundle)]
    args += ["--cache", str(tmp_path / "cache.npz"), "--params", str(repo_root / "params.yaml")]
    result = CliRunner().invoke(cloud_cli, args)
    assert result.exit_code == 0, result.output
    field = json.loads((tmp_path / "field.json").read_text())["field"]
    assert field["predictions"] == 60 and field["devices"] == 1 and field["projected_now"] == 60
    assert [w["window"] for w in field["windows"]] == ["2026-W28", "2026-W29"]
    assert field["windows"][0]["drift"] is None and field["windows"][1]["drift"]["summary"]["features"] > 100
    assert field["shadow"]["pairs"] == 60 and field["shadow"]["agreement"] == pytest.approx(40 / 60)
    assert field["device_skew"][0]["summary"]["alerts"] == ["skill:LangChain"]
    trends = json.loads((bundle / "trends.json").read_text())
    assert trends["window"] == "2026-W29" and trends["documents"] == 30
    assert verify_bundle(bundle)["files"]["trends.json"]  # the manifest lists it with its sha256
    again = CliRunner().invoke(cloud_cli, args)  # the projection cache: nothing new to project
    assert again.exit_code == 0
    assert json.loads((tmp_path / "field.json").read_text())["field"]["projected_now"] == 0


def test_monitor_reads_the_store_in_chunks_with_the_same_report(tmp_path, kaggle_csv, repo_root, monkeypatch):
    """A store read a few rows at a time (texts dropped after each chunk is projected) gives the report
    the whole read gives, first run and cached run alike."""
    import cloud.collector.storage_api as storage_api

    store_path, splits = collector_store_and_splits(tmp_path, kaggle_csv)

    def field(name: str, rows_per_chunk: int) -> dict:
        monkeypatch.setattr(storage_api, "LOGGED_CHUNK_ROWS", rows_per_chunk)
        args = ["monitor", "--store", str(store_path), "--splits", str(splits)]
        args += ["--out", str(tmp_path / f"{name}.json"), "--cache", str(tmp_path / f"{name}.npz")]
        args += ["--params", str(repo_root / "params.yaml")]
        result = CliRunner().invoke(cloud_cli, args)
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / f"{name}.json").read_text())["field"]

    whole, chunked = field("whole", 10_000), field("chunked", 7)
    assert chunked["projected_now"] == whole["projected_now"] == 60
    assert chunked == whole
    cached = field("chunked", 7)  # the same cache file: every row known, nothing projected again
    assert cached["projected_now"] == 0 and {**cached, "projected_now": 60} == whole


def test_monitor_without_inputs_or_with_a_bad_store_is_one_clear_line(tmp_path):
    nothing = CliRunner().invoke(cloud_cli, ["monitor"])
    assert nothing.exit_code != 0 and "nothing to monitor" in nothing.output
    bad = CliRunner().invoke(cloud_cli, ["monitor", "--store", "mysql://x", "--splits", str(tmp_path)])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
