"""`careeredge-cloud monitor`: skew and drift of what is served, per ISO week, and the trends file.

Inputs, either or both:
* `--store URL`: the predictions devices logged (the collector's SQLite file or PostgreSQL URL),
  with their shadow predictions and the skew summaries devices sent;
* `--normalized DIR`: a normalized posting stream (no served class: the class feature is reported
  as "no values"), e.g. the 2026 stream the pipeline ingests.

Against the 2025 training split (`--splits`): per ISO week, training-serving skew (week vs 2025),
prediction drift (week vs the week before), the rising and falling skills with their counts. Writes
the monitoring JSON (`--out`) and the trends file of the last week (`--trends`), which
`device.advice` ranks "next skills" by; `--bundle DIR` also puts it inside a model bundle, where the
signed manifest covers it and OTA carries it to devices.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np

from cloud.artifacts import write_json_atomic
from cloud.cli_options import params_option, splits_option
from cloud.monitoring.baseline import BASELINE_NAME, baseline_table
from cloud.monitoring.field import LoggedPredictions, ProjectionCache, shadow_agreement
from cloud.monitoring.settings import MonitoringSettings
from cloud.monitoring.windows import class_counts, window_reports
from cloud.params import load_params
from shared.errors import UserError
from shared.monitoring.features import FeatureTable, project
from shared.monitoring.trends import TRENDS_IN_BUNDLE, build_trends


def stream_table(normalized: Path) -> FeatureTable:
    """A normalized stream as feature rows, dated by arrival (job radar) or posting date."""
    from cloud.ingest.normalized import load_postings

    postings = load_postings(normalized)
    return project(
        [p.description for p in postings],
        None,
        None,
        model="",
        source=[p.source for p in postings],
        timestamp=[p.extra.get("first_seen") or p.posted_date or None for p in postings],
    )


def analyse(baseline: FeatureTable, table: FeatureTable, settings: MonitoringSettings) -> dict:
    """Per-week windows of `table` (rows without a date are counted, not placed)."""
    dated = ~np.isnat(table.timestamp)
    weeks = table.select(dated)
    return {
        "documents": len(table),
        "undated": int((~dated).sum()),
        "class_counts": class_counts(table),
        "windows": window_reports(baseline, weeks, weeks.iso_weeks(), settings),
    }


def add_to_bundle(bundle: Path, trends: dict) -> None:
    """Put the trends file in a bundle and list it (with its sha256) in the manifest, which the
    publisher signs: the device verifies it like every other bundle file."""
    from shared.bundle import read_manifest, save_manifest
    from shared.files import atomic_write_json, sha256_file

    manifest = read_manifest(bundle)
    path = atomic_write_json(bundle / TRENDS_IN_BUNDLE, trends)
    manifest["files"][TRENDS_IN_BUNDLE] = sha256_file(path)
    manifest.pop("signature", None)  # the manifest changed: the publisher signs it again
    save_manifest(bundle, manifest)


@click.command("monitor")
@splits_option()
@click.option("--store", "store_url", default=None, help="The collector's store: a SQLite path or postgresql:// URL.")
@click.option("--normalized", type=click.Path(path_type=Path), default=None, help="A normalized posting stream.")
@params_option()
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    default=Path("artifacts/monitoring/field.json"),
    show_default=True,
)
@click.option(
    "--trends", "trends_file", type=click.Path(path_type=Path), default=None, help="Write the trends file here."
)
@click.option(
    "--bundle", type=click.Path(path_type=Path), default=None, help="Also put the trends file in this bundle."
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=Path("artifacts/monitoring/projection_cache.npz"),
    show_default=True,
    help="Projected rows of logged predictions, reused between runs.",
)
def monitor_command(splits, store_url, normalized, params_path, out_file, trends_file, bundle, cache) -> None:
    """Skew (vs 2025) and drift (week vs week) of logged predictions and/or a stream; the trends file."""
    if store_url is None and normalized is None:
        raise UserError("nothing to monitor: give --store (logged predictions) and/or --normalized (a stream)")
    settings = MonitoringSettings.from_params(load_params(params_path))
    began = time.perf_counter()
    baseline = baseline_table(splits)
    report = {
        "format": 1,
        "kind": "monitor",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "baseline": {"name": BASELINE_NAME, "documents": len(baseline), "class_counts": class_counts(baseline)},
        "settings": settings.to_json(),
    }
    latest = None
    if store_url is not None:
        report["field"], latest = field_report(store_url, baseline, settings, cache)
    if normalized is not None:
        table = stream_table(normalized)
        report["stream"] = {"path": str(normalized), **analyse(baseline, table, settings)}
        latest = latest or last_week(table)
    report["seconds"] = round(time.perf_counter() - began, 3)
    write_json_atomic(out_file, report)
    click.echo(summary_line(report, out_file))
    if trends_file or bundle:
        if latest is None:
            raise UserError("no dated rows to write a trends file from (every row lacks a timestamp)")
        week, window = latest
        trends = build_trends(baseline, window, week, BASELINE_NAME, settings.min_count)
        if trends_file:
            write_json_atomic(trends_file, trends)
            click.echo(
                f"monitor: trends for {week} ({len(window)} postings, {len(trends['skills'])} skills) -> {trends_file}"
            )
        if bundle:
            add_to_bundle(bundle, trends)
            click.echo(f"monitor: trends for {week} added to {bundle} (publish it to sign the manifest again)")


def field_report(store_url: str, baseline: FeatureTable, settings: MonitoringSettings, cache_path: Path):
    from tqdm.auto import tqdm

    from cloud.collector.storage import open_storage

    cache = ProjectionCache(cache_path)
    storage = open_storage(store_url, collector="monitor")
    storage.open()
    parts, tables, projected = [], [], 0
    try:
        device_skew = storage.device_skew()
        total = storage.prediction_count()
        with tqdm(total=total, unit="prediction", desc="monitor: field rows", disable=total < 20_000) as bar:
            for rows in storage.logged_prediction_chunks(cache.texts_from):
                chunk = LoggedPredictions.from_rows(rows)
                try:
                    table, projected_now = cache.features(chunk)
                except ValueError as exc:
                    raise UserError(f"{cache_path}: {exc}") from None
                parts.append(chunk.without_texts())  # projected: the texts are not needed again
                tables.append(table)
                projected += projected_now
                bar.update(len(rows))
    finally:
        storage.close()
    logged, table = LoggedPredictions.concat(parts), FeatureTable.concat(tables)
    cache.save()
    report = {
        "predictions": len(table),
        "devices": len({key.split("/", 1)[0] for key in logged.keys}),
        "projected_now": projected,
        **analyse(baseline, table, settings),
        "shadow": shadow_agreement(logged, table, settings.min_count),
        "device_skew": device_skew,
    }
    return report, last_week(table)


def last_week(table: FeatureTable) -> tuple[str, FeatureTable] | None:
    dated = table.select(~np.isnat(table.timestamp))
    if not len(dated):
        return None
    weeks = dated.iso_weeks()
    week = max(weeks.tolist())
    return week, dated.select(weeks == week)


def summary_line(report: dict, out_file: Path) -> str:
    parts = []
    for section in ("field", "stream"):
        if section in report:
            windows = report[section]["windows"]
            alerts = sum(len(w["skew"]["summary"]["alerts"]) for w in windows)
            parts.append(f"{section}: {report[section]['documents']} rows, {len(windows)} weeks, {alerts} skew alerts")
    return f"monitor: {'; '.join(parts)} ({report['seconds']} s) -> {out_file}"
