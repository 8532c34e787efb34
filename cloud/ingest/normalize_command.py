"""`careeredge-cloud normalize`: the ingest manifest's raw batches -> postings.jsonl + quarantine.jsonl.

Output directory (replaced in one rename, never half-written):
* `postings.jsonl`   - one `JobPosting.to_record()` per line (absent when nothing survived);
* `quarantine.jsonl` - one `{"batch", "position", "reason", "record"}` per rejected record;
* `report.json`      - counts: seen per batch, kept per source, quarantined per reason, languages.
"""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from cloud.artifacts import atomic_directory, write_json_atomic
from cloud.ingest.file_drop import read_records
from cloud.ingest.manifest import read_manifest
from cloud.ingest.normalize import Batch, normalize
from cloud.ingest.normalized import POSTINGS, QUARANTINE, REPORT
from shared.errors import UserError
from shared.files import atomic_write_jsonl


@click.command("normalize")
@click.option("--ingest-dir", type=click.Path(path_type=Path), default=Path("data/ingest"), show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("data/normalized"), show_default=True)
def normalize_command(ingest_dir: Path, out_dir: Path) -> None:
    """Map every raw batch to JobPosting; de-duplicate; quarantine malformed/non-English records."""
    raw_batches = read_manifest(ingest_dir)
    with tqdm(total=sum(b.records for b in raw_batches), desc="normalize", unit="rec", leave=False) as bar:
        batches = (Batch(raw.name, read_records(ingest_dir / raw.path)) for raw in raw_batches)
        result = normalize(batches, on_batch=lambda batch: bar.update(len(batch.records)))
    report = result.report()
    with atomic_directory(out_dir) as scratch:
        atomic_write_jsonl(scratch / QUARANTINE, result.quarantine)
        write_json_atomic(scratch / REPORT, report)
        if result.postings:
            atomic_write_jsonl(scratch / POSTINGS, (posting.to_record() for posting in result.postings))
    click.echo(
        f"normalize: {report['records_seen']} seen, {report['kept']} kept, "
        f"{report['quarantined']} quarantined {report['quarantined_by_reason']}, "
        f"{report['non_english']} non-English -> {out_dir}"
    )
    if not result.postings:
        raise UserError(
            f"no usable postings in {len(raw_batches)} batches "
            f"(quarantined: {report['quarantined_by_reason']}); see {out_dir / QUARANTINE}"
        )
