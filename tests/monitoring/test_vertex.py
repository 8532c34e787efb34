"""The Vertex AI exporter offline: the spec and rows checked against the library's own types; no GCP.

Live GCP was not reachable where this was written; these tests are what exercised the exporter.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.monitoring.settings import MonitoringSettings
from cloud.monitoring.vertex import (
    PREDICTION_COLUMN,
    TIMESTAMP_COLUMN,
    VertexSettings,
    column_name,
    describe,
    feature_columns,
    monitoring_spec,
    vertex_rows,
)
from shared.monitoring.features import SKILL_NAMES, project
from tests.conftest import require_module

aiplatform = require_module("vertexai.resources.preview.ml_monitoring", "the vertex extra")


def test_spec_uses_vertex_metrics_thresholds_and_one_column_per_feature():
    settings = VertexSettings(enabled=True, project="p", dataset="d", bucket="b", model="projects/p/models/1")
    monitoring = MonitoringSettings(thresholds={"confidence": 0.1, "skill:LangChain": 0.05})
    objects = monitoring_spec(settings, monitoring)
    assert isinstance(objects["objective"], aiplatform.spec.TabularObjective)
    spec = describe(objects, settings)  # through the protos the API would receive
    drift = spec["objective"]["featureDriftSpec"]
    assert drift["categoricalMetricType"] == "l_infinity"
    assert drift["numericMetricType"] == "jensen_shannon_divergence"
    assert drift["defaultCategoricalAlertCondition"]["threshold"] == pytest.approx(0.3)
    assert {k: v["threshold"] for k, v in drift["featureAlertConditions"].items()} == pytest.approx(
        {"confidence": 0.1, "skill_langchain": 0.05}
    )
    fields = {f["name"]: f["dataType"] for f in spec["schema"]["featureFields"]}
    assert len(fields) == len(feature_columns()) and fields["skill_cplusplus"] == "categorical"
    assert fields["text_length"] == "integer" and fields["confidence"] == "float"
    assert spec["schema"]["predictionFields"] == [{"name": PREDICTION_COLUMN, "dataType": "categorical"}]
    target = spec["target_dataset"]["columnizedDataset"]
    assert target["bigquerySource"]["tableUri"] == "bq://p.d.serving"
    assert target["timestampField"] == TIMESTAMP_COLUMN
    assert spec["training_dataset"]["columnizedDataset"]["bigquerySource"]["tableUri"] == "bq://p.d.baseline_2025"


def test_rows_are_flat_and_match_the_schema():
    table = project(
        ["LangChain in C++ and C#"], [0], [0.8], model="model_a_v1", source="web", timestamp="2026-07-06T10:00:00Z"
    )
    (row,) = vertex_rows(table)
    assert set(feature_columns()) <= set(row)
    assert row["skill_langchain"] == "1" and row["skill_cplusplus"] == "1" and row["skill_csharp"] == "1"
    assert row["skill_c"] == "0" and row["category_genai"] == "1"
    assert row[PREDICTION_COLUMN] == "0" and row[TIMESTAMP_COLUMN] == "2026-07-06T10:00:00Z"
    assert all(not isinstance(v, (dict, list)) for v in row.values())
    assert len({column_name(f"skill:{n}") for n in SKILL_NAMES}) == len(SKILL_NAMES)


def test_dry_run_prints_spec_and_sample_rows_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    splits = _splits(tmp_path)
    result = CliRunner().invoke(cloud_cli, ["vertex-export", "--dry-run", "--splits", str(splits)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert len(printed["baseline_rows"]) == 2 and printed["serving_rows"] == []
    assert printed["spec"]["objective"]["featureDriftSpec"]["categoricalMetricType"] == "l_infinity"


def test_export_without_credentials_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe a metadata server from a test
    params = tmp_path / "params.yaml"
    params.write_text(
        "vertex: {enabled: true, project: p, region: europe-west4, dataset: d, bucket: b, model: projects/p/models/1}\n"
    )
    result = CliRunner().invoke(
        cloud_cli, ["vertex-export", "--params", str(params), "--splits", str(_splits(tmp_path))]
    )
    assert result.exit_code != 0
    assert "no GCP credentials" in result.output and "Traceback" not in result.output
    off = CliRunner().invoke(cloud_cli, ["vertex-export", "--params", str(tmp_path / "none.yaml")])
    assert off.exit_code != 0 and "params file not found" in off.output


def test_exporter_off_by_default(tmp_path, repo_root):
    result = CliRunner().invoke(
        cloud_cli, ["vertex-export", "--params", str(repo_root / "params.yaml"), "--splits", str(_splits(tmp_path))]
    )
    assert result.exit_code != 0 and "vertex.enabled: false" in result.output


def _splits(tmp_path):
    import csv

    splits = tmp_path / "splits"
    splits.mkdir(exist_ok=True)
    with (splits / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "text", "label"])
        writer.writerows([(1, "Data Scientist", "Python, SQL and statistics", 1), (2, "Engineer", "Java and AWS", 0)])
    return splits


def test_serving_rows_read_the_store_a_chunk_at_a_time_and_a_sample_stops_at_its_limit(store_url, kaggle_csv):
    from cloud.collector.collector import Collector
    from cloud.collector.storage import open_storage
    from cloud.monitoring.vertex import serving_rows
    from shared.mqtt.client import BrokerSettings
    from tests.monitoring.fleet_traffic import batches, postings

    storage = open_storage(store_url, collector="test")
    storage.open()
    collector = Collector(storage, BrokerSettings(host="127.0.0.1", port=1))
    assert {collector.handle(topic, payload) for topic, payload in batches(postings(kaggle_csv, 60))} == {"stored"}
    storage.close()
    assert len(serving_rows(store_url, 2)) == 2
    everything = serving_rows(store_url, None)
    assert len(everything) == 60 and everything[:2] == serving_rows(store_url, 2)
