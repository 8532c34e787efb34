"""`careeredge-cloud vertex-export`: the monitoring features where Vertex AI Model Monitoring v2 reads them.

Off by default (params.yaml `vertex.enabled: false`); the `vertex` extra brings google-cloud-aiplatform
and google-cloud-bigquery. What it does, with `vertex.project`, `region`, `dataset`, `bucket`, `model`:

1. writes two BigQuery tables in `dataset`: `baseline_2025` (the 2025 training split, the reference)
   and `serving` (the logged predictions), one column per monitored feature plus `prediction_time`;
2. creates a ModelMonitor for the registered model with that schema and the 2025 table as training
   data, and a weekly schedule: `DataDriftSpec` with categorical `l_infinity` and numeric
   `jensen_shannon_divergence`, the same thresholds the offline job uses (`monitoring:`), output under
   `gs://<bucket>/model_monitoring`, e-mail notifications to `vertex.emails`.

`--dry-run` builds every object with the library's own types and prints the spec and sample rows,
without credentials or network. Live GCP was not reachable where this was written: only the dry run
and the offline tests (tests/monitoring/test_vertex.py) have exercised it.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

import click
import numpy as np

from cloud.cli_options import params_option, splits_option
from cloud.monitoring.settings import MonitoringSettings
from cloud.params import load_params
from shared.errors import UserError
from shared.monitoring.features import NUMERIC_FEATURES, SKILL_NAMES, FeatureTable
from shared.skills import CATEGORIES

TIMESTAMP_COLUMN = "prediction_time"
PREDICTION_COLUMN = "predicted_class"
BASELINE_TABLE = "baseline_2025"
SERVING_TABLE = "serving"
INSTALL_HINT = "the vertex extra is not installed: pip install 'careeredge[vertex]'"


_SPELLED = {"+": "plus", "#": "sharp", "&": "and"}  # so "C", "C++" and "C#" stay three columns


def column_name(feature: str) -> str:
    """A feature name as a BigQuery column: "skill:Node.js" -> "skill_node_js", "skill:C++" -> "skill_cplusplus"."""
    spelled = "".join(_SPELLED.get(char, char) for char in feature.lower())
    return re.sub(r"[^0-9a-z]+", "_", spelled).strip("_")


def feature_columns() -> dict[str, str]:
    """Monitored feature -> Vertex data type ("categorical" for flags, "float"/"integer" for numbers)."""
    columns = {column_name(f"skill:{name}"): "categorical" for name in SKILL_NAMES}
    columns.update({column_name(f"category:{c}"): "categorical" for c in CATEGORIES})
    columns.update({"confidence": "float", "text_length": "integer"})
    if len(columns) != len(SKILL_NAMES) + len(CATEGORIES) + len(NUMERIC_FEATURES):
        raise ValueError("two features map to one BigQuery column; extend column_name's spellings")
    return columns


def vertex_rows(table: FeatureTable, limit: int | None = None) -> list[dict]:
    """Feature rows as Vertex reads them: flat, one scalar per column, timestamps as ISO text."""
    from shared.monitoring.features import categorical_features

    flags = {column_name(f): table.categorical(f) for f in categorical_features() if f != PREDICTION_COLUMN}
    rows = []
    for i in range(len(table) if limit is None else min(limit, len(table))):
        row = {name: str(int(values[i])) for name, values in flags.items()}
        confidence = float(table.confidence[i])
        row["confidence"] = None if np.isnan(confidence) else confidence
        row["text_length"] = int(table.text_length[i])
        row[PREDICTION_COLUMN] = None if table.predicted_class[i] < 0 else str(int(table.predicted_class[i]))
        row[TIMESTAMP_COLUMN] = None if np.isnat(table.timestamp[i]) else f"{table.timestamp[i]}Z"
        row["model"] = str(table.model[i])
        row["source"] = str(table.source[i])
        rows.append(row)
    return rows


@dataclass(frozen=True)
class VertexSettings:
    enabled: bool = False
    project: str = ""
    region: str = "europe-west4"
    dataset: str = "careeredge_monitoring"
    bucket: str = ""
    model: str = ""  # projects/<p>/locations/<r>/models/<id> of the registered model
    model_version: str = "1"
    schedule: str = "0 6 * * 1"  # weekly, Monday 06:00 UTC (after the weekly retrain)
    emails: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: dict) -> VertexSettings:
        section = params.get("vertex") or {}
        unknown = sorted(set(section) - set(cls.__dataclass_fields__))
        if unknown:
            raise UserError(f"vertex: unknown keys {', '.join(unknown)}")
        return cls(**section)

    def missing(self) -> list[str]:
        return [
            f"vertex.{key}" for key in ("project", "region", "dataset", "bucket", "model") if not getattr(self, key)
        ]

    def table_uri(self, table: str) -> str:
        return f"bq://{self.project or '<project>'}.{self.dataset}.{table}"


def monitoring_spec(settings: VertexSettings, monitoring: MonitoringSettings):
    """The ModelMonitor's schema, objective, output and notification, as the library's own types."""
    try:
        from vertexai.resources.preview.ml_monitoring import spec
    except ImportError:
        raise UserError(INSTALL_HINT) from None

    thresholds = monitoring.alert_thresholds()
    per_feature = {}
    for feature in [f"skill:{n}" for n in SKILL_NAMES] + [f"category:{c}" for c in CATEGORIES] + list(NUMERIC_FEATURES):
        value = thresholds.for_feature(feature)
        if value != thresholds.default:
            per_feature[column_name(feature)] = value
    schema = spec.ModelMonitoringSchema(
        feature_fields=[spec.FieldSchema(name=n, data_type=t) for n, t in feature_columns().items()],
        prediction_fields=[spec.FieldSchema(name=PREDICTION_COLUMN, data_type="categorical")],
    )
    drift = spec.DataDriftSpec(
        categorical_metric_type="l_infinity",
        numeric_metric_type="jensen_shannon_divergence",
        default_categorical_alert_threshold=thresholds.default,
        default_numeric_alert_threshold=thresholds.default,
        feature_alert_thresholds=per_feature or None,
    )
    output_drift = spec.DataDriftSpec(
        features=[PREDICTION_COLUMN],
        categorical_metric_type="l_infinity",
        default_categorical_alert_threshold=thresholds.for_feature(PREDICTION_COLUMN),
    )
    return {
        "schema": schema,
        "training_dataset": spec.MonitoringInput(table_uri=settings.table_uri(BASELINE_TABLE)),
        "target_dataset": spec.MonitoringInput(
            table_uri=settings.table_uri(SERVING_TABLE), timestamp_field=TIMESTAMP_COLUMN, window="1w"
        ),
        "objective": spec.TabularObjective(feature_drift_spec=drift, prediction_output_drift_spec=output_drift),
        "output": spec.OutputSpec(gcs_base_dir=f"gs://{settings.bucket or '<bucket>'}/model_monitoring"),
        "notification": spec.NotificationSpec(user_emails=list(settings.emails) or None, enable_cloud_logging=True),
    }


def describe(objects: dict, settings: VertexSettings) -> dict:
    """The spec as plain JSON: what --dry-run prints and the tests read (via the protos the API receives)."""
    from google.protobuf.json_format import MessageToDict

    return {
        "model": settings.model or "<vertex.model>",
        "model_version": settings.model_version,
        "region": settings.region,
        "schedule": settings.schedule,
        "schema": MessageToDict(objects["schema"]._as_proto()._pb),
        "training_dataset": MessageToDict(objects["training_dataset"]._as_proto()._pb),
        "target_dataset": MessageToDict(objects["target_dataset"]._as_proto()._pb),
        "objective": MessageToDict(objects["objective"]._as_proto()._pb),
        "output": MessageToDict(objects["output"]._as_proto()._pb),
        "notification": MessageToDict(objects["notification"]._as_proto()._pb),
    }


def credentials():
    """Application-default credentials, or one UserError saying how to provide them."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    try:
        creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise UserError(
            "no GCP credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run "
            "`gcloud auth application-default login` (or use --dry-run to see what would be sent)"
        ) from None
    return creds


def export(settings: VertexSettings, objects: dict, baseline: list[dict], serving: list[dict]) -> dict:
    """Load both tables and create the monitor and its weekly schedule. Needs GCP (not reachable here)."""
    from google.cloud import bigquery
    from vertexai.resources.preview.ml_monitoring import ModelMonitor

    creds = credentials()
    client = bigquery.Client(project=settings.project, credentials=creds, location=settings.region)
    client.create_dataset(settings.dataset, exists_ok=True)
    replace = bigquery.LoadJobConfig(write_disposition="WRITE_TRUNCATE", autodetect=True)
    for table, rows in ((BASELINE_TABLE, baseline), (SERVING_TABLE, serving)):
        client.load_table_from_json(rows, f"{settings.project}.{settings.dataset}.{table}", job_config=replace).result()
    monitor = ModelMonitor.create(
        model_name=settings.model,
        model_version_id=settings.model_version,
        training_dataset=objects["training_dataset"],
        display_name="careeredge skew and drift",
        model_monitoring_schema=objects["schema"],
        tabular_objective_spec=objects["objective"],
        output_spec=objects["output"],
        notification_spec=objects["notification"],
        project=settings.project,
        location=settings.region,
        credentials=creds,
    )
    schedule = monitor.create_schedule(
        cron=settings.schedule,
        target_dataset=objects["target_dataset"],
        display_name="careeredge weekly drift",
        baseline_dataset=objects["training_dataset"],
    )
    return {"model_monitor": monitor.resource_name, "schedule": schedule.name}


@click.command("vertex-export")
@splits_option()
@click.option("--store", "store_url", default=None, help="The collector's store (logged predictions).")
@params_option()
@click.option("--dry-run", is_flag=True, help="Print the spec and sample rows; send nothing.")
@click.option("--sample", type=int, default=2, show_default=True, help="Rows of each table printed by --dry-run.")
def vertex_export_command(splits, store_url, params_path, dry_run, sample) -> None:
    """Export monitoring features to BigQuery and set up Vertex AI Model Monitoring (off by default)."""
    from cloud.monitoring.baseline import baseline_table

    params = load_params(params_path)
    settings, monitoring = VertexSettings.from_params(params), MonitoringSettings.from_params(params)
    if not dry_run and not settings.enabled:
        raise UserError("the Vertex AI exporter is off (vertex.enabled: false in params.yaml); --dry-run shows it")
    if not dry_run and settings.missing():
        raise UserError(f"set {', '.join(settings.missing())} in params.yaml to export to Vertex AI")
    objects = monitoring_spec(settings, monitoring)
    baseline = vertex_rows(baseline_table(splits), None if not dry_run else sample)
    serving = serving_rows(store_url, None if not dry_run else sample)
    if dry_run:
        click.echo(json.dumps({"spec": describe(objects, settings), "baseline_rows": baseline,
                               "serving_rows": serving}, indent=2))  # fmt: skip
        return
    created = export(settings, objects, baseline, serving)
    click.echo(f"vertex-export: {len(baseline)} baseline rows, {len(serving)} serving rows; {created}")


def serving_rows(store_url: str | None, limit: int | None) -> list[dict]:
    if store_url is None:
        return []
    from cloud.collector.storage import open_storage
    from cloud.monitoring.field import LoggedPredictions, ProjectionCache

    storage = open_storage(store_url, collector="vertex-export")
    storage.open()
    cache, tables = ProjectionCache(None), []
    try:  # a chunk at a time, as the monitoring job reads it; a sample stops at its limit
        with contextlib.closing(storage.logged_prediction_chunks(size=limit or None)) as chunks:
            for rows in chunks:
                tables.append(cache.features(LoggedPredictions.from_rows(rows))[0])
                if limit:
                    break  # closing the read ends its statement (or returns its pooled connection)
    finally:
        storage.close()
    return vertex_rows(FeatureTable.concat(tables))
