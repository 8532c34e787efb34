"""Prediction batches as devices send them, built from the committed 2025 CSV (real posting text)."""

from __future__ import annotations

import csv
import hashlib
import uuid as uuid_module
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.labels import LABEL_NAMES
from shared.mqtt.contract import PREDICTION_BATCH, Topics

WEEK_1 = datetime(2026, 7, 6, 9, 0, tzinfo=UTC)  # Monday of 2026-W28


def postings(kaggle_csv: Path, count: int) -> list[str]:
    with kaggle_csv.open(newline="", encoding="utf-8") as handle:
        return [row["description"] for row, _ in zip(csv.DictReader(handle), range(count))]


def record(text: str, index: int, created_at: datetime, label: int, shadow_label: int | None) -> dict:
    p1 = 0.8 if label == 1 else 0.2
    body = {
        "uuid": str(uuid_module.UUID(int=index + 1)),
        "created_at": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": "api",
        "model_name": "model_a_v1",
        "model_version": "1",
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "text": text[:20000],
        "snippet": text[:200],
        "label": label,
        "label_name": LABEL_NAMES[label],
        "probabilities": [1 - p1, p1],
        "latency_ms": 12.5,
    }
    if shadow_label is not None:
        q1 = 0.7 if shadow_label == 1 else 0.1
        body["shadow"] = {"model_name": "model_b_v3", "model_version": "3", "probabilities": [1 - q1, q1]}
    return body


def batches(texts: list[str], device_id: str = "pi-1", per_batch: int = 20, skew: dict | None = None):
    """(topic, payload) pairs: half the rows in 2026-W28, half in W29; every third one disagrees
    with its shadow; the last batch carries the device's skew summary when given."""
    records = []
    for i, text in enumerate(texts):
        created = WEEK_1 + timedelta(days=7 * (i * 2 // len(texts)), minutes=i)
        label = i % 2
        records.append(record(text, i, created, label, (1 - label) if i % 3 == 0 else label))
    out = []
    for start in range(0, len(records), per_batch):
        batch = {
            "schema": PREDICTION_BATCH.schema_id,
            "device_id": device_id,
            "batch_id": str(uuid_module.UUID(int=10_000 + start)),
            "sent_at": "2026-07-20T10:00:00.000Z",
            "records": records[start : start + per_batch],
        }
        if skew and start + per_batch >= len(records):
            batch["skew"] = skew
        out.append((Topics.device_predictions(device_id), PREDICTION_BATCH.encode(batch)))
    return out
