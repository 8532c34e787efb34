"""Pipeline stages `prepare` (read, clean, de-duplicate) and `label` (taxonomy + stratified split).

prepare: data/raw/jobs_2025_kaggle.csv -> data/interim/postings_2025.jsonl + prepare_report.json
label:   postings -> data/processed/splits/{train,val,test}.csv, rejected.csv, label_report.json
"""
from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import click

from cloud.artifacts import ensure_writable_dir, write_json_atomic
from cloud.data.kaggle import read_kaggle_csv
from cloud.params import load_params
from shared.errors import UserError
from shared.labels import LABEL_NAMES, matching_rule
from shared.posting import JobPosting

SPLIT_COLUMNS = ("id", "title", "text", "label")


def deduplicate(postings: list[JobPosting]) -> tuple[list[JobPosting], int]:
    """Drop exact-duplicate descriptions (re-posts). Keeping them would leak test rows into train."""
    seen: set[str] = set()
    unique = []
    for posting in postings:
        key = hashlib.sha256(posting.description.strip().lower().encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            unique.append(posting)
    return unique, len(postings) - len(unique)


def stratified_split(labels: list[int], fractions: tuple[float, float, float], seed: int) -> list[str]:
    """Assign each row to train/val/test, stratified by label, reproducible for a given seed."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(labels)))
    train_frac, val_frac, test_frac = fractions
    train_idx, rest_idx = train_test_split(indices, test_size=val_frac + test_frac,
                                           stratify=labels, random_state=seed)
    rest_labels = [labels[i] for i in rest_idx]
    val_idx, test_idx = train_test_split(rest_idx, test_size=test_frac / (val_frac + test_frac),
                                         stratify=rest_labels, random_state=seed)
    assignment = [""] * len(labels)
    for name, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx)):
        for i in idx:
            assignment[i] = name
    return assignment


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def run_prepare(raw_csv: Path, out_dir: Path) -> dict:
    postings = read_kaggle_csv(raw_csv)
    unique, duplicates = deduplicate(postings)
    ensure_writable_dir(out_dir)
    out = out_dir / "postings_2025.jsonl"
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for posting in unique:
            handle.write(json.dumps(posting.to_record(), ensure_ascii=False) + "\n")
    tmp.replace(out)
    report = {"rows_read": len(postings), "duplicates_dropped": duplicates, "rows_kept": len(unique),
              "input_sha256": hashlib.sha256(raw_csv.read_bytes()).hexdigest()}
    write_json_atomic(out_dir / "prepare_report.json", report)
    return report


def run_label(postings_path: Path, out_dir: Path, fractions: tuple[float, float, float], seed: int) -> dict:
    if not postings_path.is_file():
        raise UserError(f"{postings_path} not found (run `careeredge-cloud prepare` first)")
    postings = [JobPosting.from_record(json.loads(line))
                for line in postings_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    labelled, rejected = [], []
    for posting in postings:
        rule = matching_rule(posting.title)
        row = {"id": posting.source_id, "title": posting.title, "text": posting.description}
        if rule is None or rule.label is None:
            rejected.append({**row, "reason": rule.reason if rule else "no taxonomy rule matched"})
        else:
            labelled.append({**row, "label": rule.label})
    if len({r["label"] for r in labelled}) < 2:
        raise UserError("the taxonomy produced a single class; cannot train a binary classifier")
    splits_dir = ensure_writable_dir(out_dir / "splits")
    assignment = stratified_split([r["label"] for r in labelled], fractions, seed)
    for split in ("train", "val", "test"):
        write_csv(splits_dir / f"{split}.csv", [r for r, a in zip(labelled, assignment) if a == split],
                  SPLIT_COLUMNS)
    write_csv(out_dir / "rejected.csv", rejected, ("id", "title", "reason"))
    counts = Counter(assignment)
    report = {
        "postings": len(postings),
        "labelled": len(labelled),
        "rejected": len(rejected),
        "coverage": round(len(labelled) / len(postings), 4),
        "rejected_by_reason": dict(Counter(r["reason"] for r in rejected).most_common()),
        "class_counts": {LABEL_NAMES[k]: v for k, v in sorted(Counter(r["label"] for r in labelled).items())},
        "split_sizes": {s: counts[s] for s in ("train", "val", "test")},
        "seed": seed,
    }
    write_json_atomic(out_dir / "label_report.json", report)
    return report


@click.command("prepare")
@click.option("--raw", "raw_csv", type=click.Path(path_type=Path), default=Path("data/raw/jobs_2025_kaggle.csv"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("data/interim"))
def prepare_command(raw_csv: Path, out_dir: Path) -> None:
    """Read, clean and de-duplicate the 2025 Kaggle postings."""
    report = run_prepare(raw_csv, out_dir)
    click.echo(f"prepare: {report['rows_read']} rows read, {report['duplicates_dropped']} duplicate "
               f"descriptions dropped, {report['rows_kept']} kept -> {out_dir}/postings_2025.jsonl")


@click.command("label")
@click.option("--postings", type=click.Path(path_type=Path), default=Path("data/interim/postings_2025.jsonl"))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("data/processed"))
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"))
def label_command(postings: Path, out_dir: Path, params_path: Path) -> None:
    """Label postings by title taxonomy and write the stratified train/val/test split."""
    split = load_params(params_path)["split"]
    report = run_label(postings, out_dir, (split["train"], split["val"], split["test"]), split["seed"])
    click.echo(f"label: {report['labelled']}/{report['postings']} labelled ({report['coverage']:.1%}), "
               f"{report['rejected']} rejected (see {out_dir}/rejected.csv); classes {report['class_counts']}; "
               f"splits {report['split_sizes']}")
