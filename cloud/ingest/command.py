"""`careeredge-cloud ingest`: collect this run's raw batches into one directory plus a manifest.

Sources, any mix:
* `--file PATH` (repeatable): a file drop (JSON array, JSONL, CSV), copied byte for byte;
* `--brightdata-inputs PATH`: a JSON list of Bright Data inputs, collected through the Web Scraper
  API with the token from $BRIGHTDATA_API_TOKEN (base URL from --base-url or $BRIGHTDATA_BASE_URL);
* `--snapshot-id ID`: resume a Bright Data collection that was already triggered.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cloud.ingest import brightdata
from cloud.ingest.file_drop import drop_format, read_records
from cloud.ingest.manifest import MANIFEST_NAME, RawBatch, write_manifest
from shared.errors import UserError
from shared.files import atomic_write_bytes, sha256_file


def ingest_file(path: Path, raw_dir: Path) -> RawBatch:
    drop_format(path)
    records = read_records(path)
    if not records:
        raise UserError(f"{path}: holds no records")
    target = atomic_write_bytes(raw_dir / path.name, path.read_bytes())
    return RawBatch(
        name=path.stem,
        path=f"raw/{target.name}",
        sha256=sha256_file(target),
        records=len(records),
        origin=f"file:{path}",
    )


def ingest_brightdata(
    inputs_path: Path | None,
    snapshot_id: str | None,
    raw_dir: Path,
    *,
    discover_by: str | None,
    base_url: str | None,
    poll_interval_s: float,
    poll_timeout_s: float,
) -> RawBatch:
    inputs = _read_inputs(inputs_path) if inputs_path else []
    if discover_by is None and inputs and all("keyword" in item for item in inputs):
        discover_by = "keyword"
    options = {"poll_interval_s": poll_interval_s, "poll_timeout_s": poll_timeout_s}
    if base_url:
        options["base_url"] = base_url
    client = brightdata.BrightDataClient.from_env(**options)

    def show(status: dict) -> None:
        click.echo(
            f"  snapshot {status.get('snapshot_id', snapshot_id or '')}: {status.get('status')}"
            + (f", {status['records']} records" if status.get("records") is not None else ""),
            err=True,
        )

    snapshot = client.collect(inputs, raw_dir, discover_by=discover_by, snapshot_id=snapshot_id, on_status=show)
    return RawBatch(
        name=snapshot.path.stem,
        path=f"raw/{snapshot.path.name}",
        sha256=sha256_file(snapshot.path),
        records=len(snapshot.records),
        origin=f"brightdata:{snapshot.snapshot_id}",
    )


def _read_inputs(path: Path) -> list[dict]:
    try:
        inputs = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read Bright Data inputs ({exc})") from None
    if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs) or not inputs:
        raise UserError(f"{path}: Bright Data inputs must be a non-empty JSON list of objects")
    return inputs


@click.command("ingest")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("data/ingest"),
    show_default=True,
    help="Directory for raw/ and manifest.json.",
)
@click.option(
    "--file",
    "files",
    type=click.Path(path_type=Path),
    multiple=True,
    help="File drop to ingest (JSON array, JSONL or CSV). Repeatable.",
)
@click.option(
    "--brightdata-inputs",
    type=click.Path(path_type=Path),
    envvar="CAREEREDGE_BRIGHTDATA_INPUTS",
    help="JSON list of inputs for a Bright Data collection (needs $BRIGHTDATA_API_TOKEN). "
    "Env: CAREEREDGE_BRIGHTDATA_INPUTS, so a scheduled trainer scrapes while `dvc repro` "
    "on a laptop uses the bundled stream only.",
)
@click.option("--snapshot-id", help="Resume an already-triggered Bright Data snapshot.")
@click.option(
    "--discover-by",
    type=click.Choice(brightdata.DISCOVERY_MODES),
    envvar="CAREEREDGE_BRIGHTDATA_DISCOVER_BY",
    help="Discovery mode (type=discover_new); default: keyword when the inputs have keywords, "
    "else collect the given job URLs.",
)
@click.option("--base-url", help=f"API base URL (default ${brightdata.BASE_URL_ENV} or {brightdata.DEFAULT_BASE_URL}).")
@click.option("--poll-interval", type=float, default=10.0, show_default=True, help="Seconds between progress polls.")
@click.option(
    "--poll-timeout", type=float, default=1800.0, show_default=True, help="Give up polling after this many seconds."
)
def ingest_command(
    out_dir: Path,
    files: tuple[Path, ...],
    brightdata_inputs: Path | None,
    snapshot_id: str | None,
    discover_by: str | None,
    base_url: str | None,
    poll_interval: float,
    poll_timeout: float,
) -> None:
    """Collect raw batches (Bright Data and/or file drops) and write the ingest manifest."""
    if not files and not brightdata_inputs and not snapshot_id:
        raise UserError("nothing to ingest: give --file, --brightdata-inputs or --snapshot-id")
    raw_dir = out_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # a failed run must not leave last week's manifest
    batches = []
    for path in files:
        batches.append(ingest_file(path, raw_dir))
        click.echo(f"ingested {path} -> {batches[-1].path} ({batches[-1].records} records)", err=True)
    if brightdata_inputs or snapshot_id:
        batches.append(
            ingest_brightdata(
                brightdata_inputs,
                snapshot_id,
                raw_dir,
                discover_by=discover_by,
                base_url=base_url,
                poll_interval_s=poll_interval,
                poll_timeout_s=poll_timeout,
            )
        )
        click.echo(
            f"ingested Bright Data {batches[-1].origin} -> {batches[-1].path} ({batches[-1].records} records)", err=True
        )
    write_manifest(out_dir, batches)
    click.echo(
        f"manifest: {out_dir / MANIFEST_NAME} ({sum(b.records for b in batches)} records in {len(batches)} batches)"
    )
