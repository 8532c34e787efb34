"""Fixtures for the sync tests: a real mosquitto, signing keys, a real tiny bundle, device stores."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from shared.bundle import read_manifest, save_manifest
from shared.mqtt.contract import PREDICTION_BATCH
from shared.signing import generate_keypair, load_private_key, load_public_key
from tests.conftest import REPO_ROOT, require
from tests.support.mosquitto import Mosquitto, mosquitto_binary


@pytest.fixture
def broker(tmp_path):
    require(mosquitto_binary() is not None, "mosquitto (Debian package `mosquitto`)")
    with Mosquitto(tmp_path / "broker") as running:
        yield running


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    generate_keypair(folder / "signing.pem", folder / "signing.pub.pem")
    generate_keypair(folder / "other.pem", folder / "other.pub.pem")
    return {
        "private_path": folder / "signing.pem",
        "public_path": folder / "signing.pub.pem",
        "private": load_private_key(folder / "signing.pem"),
        "public": load_public_key(folder / "signing.pub.pem"),
        "other_private": load_private_key(folder / "other.pem"),
    }


def _tiny_bundle_inputs_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([REPO_ROOT / "tests/support/tiny_model.py", *(REPO_ROOT / "cloud/export").glob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tiny_bundle(request, tmp_path_factory) -> Path:
    """A real INT8 bundle with golden examples. Training it takes a minute on a busy Pi-class CPU, so it
    is cached in pytest's cache dir, keyed by the code that builds it."""
    try:
        import torch  # noqa: F401

        from tests.support.tiny_model import build_tiny_bundle
    except ImportError as exc:
        require(False, f"the cloud extra to build a tiny bundle ({exc})")
    cache = Path(request.config.cache.mkdir("sync-tiny-bundle")) / _tiny_bundle_inputs_digest()
    try:
        read_manifest(cache)
    except Exception:
        shutil.rmtree(cache, ignore_errors=True)
        build_tiny_bundle(cache, name="tiny_model", version="1")
    target = tmp_path_factory.mktemp("bundles") / "v1"
    shutil.copytree(cache, target)
    return target


def bundle_version(base: Path, dest: Path, version: str, golden_labels_flipped: bool = False) -> Path:
    """A copy of `base` re-versioned (optionally with wrong golden labels, to fail the health check)."""
    shutil.copytree(base, dest)
    manifest = read_manifest(dest)
    manifest["version"] = version
    if golden_labels_flipped:
        lines = [json.loads(line) for line in (dest / "golden.jsonl").read_text().splitlines() if line.strip()]
        for example in lines:
            example["label"] = 1 - example["label"]
        (dest / "golden.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
        manifest["files"]["golden.jsonl"] = hashlib.sha256((dest / "golden.jsonl").read_bytes()).hexdigest()
    save_manifest(dest, manifest)
    return dest


def prediction_record(i: int) -> dict:
    label = i % 2
    return {
        "uuid": str(uuid.uuid4()),
        "source": "cli",
        "text": f"posting number {i}: python, sql and kubernetes",
        "model_name": "tiny_model",
        "model_version": "1",
        "label": label,
        "label_name": ["Software Engineering", "Data Science"][label],
        "probabilities": [0.8, 0.2] if label == 0 else [0.3, 0.7],
        "latency_ms": 3.5,
    }


def fill_store(path: Path, count: int) -> list[str]:
    from device.store import PredictionStore

    with PredictionStore(path) as store:
        return [store.insert(prediction_record(i)) for i in range(count)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class MemoryTransport:
    """The upload pipeline's transport without a broker: records every batch it is handed, decoded as the
    collector decodes it (a batch the contract refuses fails the test); the test decides each one's fate."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.connected_since: float | None = clock.now
        self.accepting = True
        self.sent: list[dict] = []  # decoded batches, in publish order
        self.sizes: list[int] = []

    def publish_batch(self, batch_id: str, payload: bytes) -> bool:
        if not self.accepting:
            return False
        batch = PREDICTION_BATCH.decode(payload)  # what the collector would accept
        assert batch["batch_id"] == batch_id
        self.sent.append(batch)
        self.sizes.append(len(payload))
        return True

    def uuids(self, batch: dict) -> list[str]:
        return [record["uuid"] for record in batch["records"]]

    def reconnect(self) -> None:
        self.connected_since = self.clock.now
