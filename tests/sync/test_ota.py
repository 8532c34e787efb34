"""Over-the-air model updates against a real mosquitto with a real (tiny) INT8 bundle."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.publisher.packing import PackedBundle, build_ota_manifest, hash_chunks, pack_bundle
from cloud.publisher.publisher import ChannelPublisher
from device.model_command import model as model_cli
from shared.mqtt.contract import MODEL_STATE, OTA_MANIFEST, Topics, canonical_json
from shared.signing import sign_manifest
from tests.sync.conftest import bundle_version
from tests.sync.fleet import (
    RawClient,
    broker_settings,
    make_agent,
    ota_events,
    publish_raw_update,
    read_chunks,
    start_collector,
    wait_until,
)

CHUNK = 128 * 1024


def publish(broker, bundle: Path, keys, tmp_path: Path) -> dict:
    packed = pack_bundle(bundle, tmp_path / f"{bundle.name}.tar", keys["private"], chunk_size=CHUNK)
    with ChannelPublisher(broker_settings(broker), "stable") as publisher:
        return publisher.publish(packed, keys["private"], progress=False)


def active_version(agent) -> str | None:
    return agent.state()["active_model_version"]


def wait_for_event(storage, event: str, count: int = 1) -> dict:
    wait_until(lambda: len(ota_events(storage, event)) >= count, 30, f"OTA event {event!r} at the collector")
    return ota_events(storage, event)[count - 1]


@pytest.fixture
def fleet(broker, tmp_path, keys, tiny_bundle):
    """One device (v1 installed over the air) and one collector."""
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    served: list[str] = []  # what the daemon would reload, as seen when it is told to
    agent = make_agent(
        broker,
        tmp_path,
        public_key=keys["public_path"],
        on_model_activated=lambda path: served.append(Path(path).resolve().name),
    ).start()
    assert agent.wait_connected(10)
    v1 = bundle_version(tiny_bundle, tmp_path / "v1", "1")
    first_manifest = publish(broker, v1, keys, tmp_path)
    wait_for_event(storage, "activated")
    assert active_version(agent) == "1"
    yield {"agent": agent, "storage": storage, "first_manifest": first_manifest, "served": served}
    agent.stop()
    collector.stop()


def test_update_activates_keeps_previous_and_refuses_a_replayed_old_manifest(
    broker, tmp_path, keys, tiny_bundle, fleet
):
    agent, storage = fleet["agent"], fleet["storage"]
    publish(broker, bundle_version(tiny_bundle, tmp_path / "v2", "2"), keys, tmp_path)
    activated = wait_for_event(storage, "activated", count=2)
    assert activated["version"] == "2" and activated["device_id"] == "pi-1"
    ota = agent.state()["ota"]
    assert ota["active"]["version"] == "2" and ota["previous"]["version"] == "1"
    assert (agent.settings.models_dir / "active").is_symlink()

    probe = RawClient(broker)
    probe.subscribe(Topics.device_model("pi-1"))
    wait_until(lambda: probe.received(Topics.device_model("pi-1")), 10, "retained model state")
    state = MODEL_STATE.decode(probe.received(Topics.device_model("pi-1"))[-1])
    assert state["active_version"] == "2" and state["previous_version"] == "1" and state["sequence"] == 2
    probe.close()

    # Replay: the genuine, correctly signed manifest of v1 is put back on the channel.
    publish_raw_update(broker, OTA_MANIFEST.encode(fleet["first_manifest"]), [])
    rejected = wait_for_event(storage, "rejected")
    assert rejected["reason"] == "downgrade" and rejected["version"] == "1"
    assert active_version(agent) == "2"


def _v2_packed(tmp_path, keys, tiny_bundle, **version_kwargs) -> PackedBundle:
    return pack_bundle(
        bundle_version(tiny_bundle, tmp_path / "v2", "2", **version_kwargs),
        tmp_path / "v2.tar",
        keys["private"],
        chunk_size=CHUNK,
    )


def attack_corrupted_chunk(tmp_path, keys, tiny_bundle):
    packed = _v2_packed(tmp_path, keys, tiny_bundle)
    chunks = read_chunks(packed.path, CHUNK)
    chunks[1] = bytes(b ^ 0xFF for b in chunks[1][:64]) + chunks[1][64:]
    return build_ota_manifest(packed, "stable", 2, keys["private"]), chunks


def attack_bad_signature(tmp_path, keys, tiny_bundle):
    packed = _v2_packed(tmp_path, keys, tiny_bundle)
    manifest = build_ota_manifest(packed, "stable", 2, keys["private"])
    return {**manifest, "metrics": {"f1": 0.99}}, read_chunks(packed.path, CHUNK)


def attack_other_key(tmp_path, keys, tiny_bundle):
    packed = pack_bundle(
        bundle_version(tiny_bundle, tmp_path / "v2", "2"), tmp_path / "v2.tar", keys["other_private"], chunk_size=CHUNK
    )
    return build_ota_manifest(packed, "stable", 2, keys["other_private"]), read_chunks(packed.path, CHUNK)


def attack_truncated_bundle(tmp_path, keys, tiny_bundle):
    """A bundle cut short, even with a valid signature over the cut bytes, never becomes a model."""
    packed = _v2_packed(tmp_path, keys, tiny_bundle)
    with open(packed.path, "r+b") as handle:
        handle.truncate(packed.size // 2)
    size, sha256, chunk_sha256 = hash_chunks(packed.path, CHUNK)
    truncated = PackedBundle(
        packed.path, packed.name, packed.version, size, sha256, chunk_sha256, CHUNK, packed.metrics, packed.created_at
    )
    return build_ota_manifest(truncated, "stable", 2, keys["private"]), read_chunks(packed.path, CHUNK)


def attack_short_last_chunk(tmp_path, keys, tiny_bundle):
    packed = _v2_packed(tmp_path, keys, tiny_bundle)
    chunks = read_chunks(packed.path, CHUNK)
    chunks[-1] = chunks[-1][:-100]
    return build_ota_manifest(packed, "stable", 2, keys["private"]), chunks


@pytest.mark.parametrize(
    "attack, event, reason",
    [
        (attack_bad_signature, "rejected", "bad_signature"),
        (attack_other_key, "rejected", "unknown_key"),
        (attack_truncated_bundle, "rejected", "bad_archive"),
        # Bad copies of a chunk say nothing about the signed release: paused and reported, never rejected.
        (attack_corrupted_chunk, "download_paused", "chunk_corrupt"),
        (attack_short_last_chunk, "download_paused", "truncated_chunk"),
    ],
)
def test_bad_updates_are_reported_and_the_old_model_stays(
    broker, tmp_path, keys, tiny_bundle, fleet, attack, event, reason
):
    agent, storage = fleet["agent"], fleet["storage"]
    manifest, chunks = attack(tmp_path, keys, tiny_bundle)
    publish_raw_update(broker, manifest, chunks)
    reported = wait_for_event(storage, event)
    assert reported["reason"] == reason, reported
    assert active_version(agent) == "1"
    assert agent.state()["ota"]["last_event"]["reason"] == reason
    slots = sorted(p.name for p in (agent.settings.models_dir / "slots").iterdir())
    assert len(slots) == 1 and slots[0].startswith("1-"), slots  # nothing of v2 was installed
    remembered = json.loads((agent.settings.models_dir / "ota_state.json").read_text())["rejected"]
    if event == "rejected":
        assert manifest["sha256"] in remembered or reason in remembered.values()
        assert not list((agent.settings.models_dir / "downloads").iterdir())
    else:  # the chunks it has are kept for the next attempt, and the release is not blacklisted
        assert manifest["sha256"] not in remembered and not ota_events(storage, "rejected")


def test_failed_health_check_keeps_the_current_model(broker, tmp_path, keys, tiny_bundle, fleet):
    agent, storage = fleet["agent"], fleet["storage"]
    broken = bundle_version(tiny_bundle, tmp_path / "v2", "2", golden_labels_flipped=True)
    publish(broker, broken, keys, tmp_path)
    rejected = wait_for_event(storage, "rejected")
    assert rejected["reason"] == "health_check_failed" and rejected["version"] == "2"
    assert "0/" in rejected["detail"]
    assert active_version(agent) == "1"
    assert [name.split("-")[0] for name in fleet["served"]] == ["1"]  # checked before the daemon ever saw it
    # The rejected bundle is not retried on reconnect (the manifest stays retained on the broker).
    agent.ota.submit_connected()
    time.sleep(1.0)
    assert len(ota_events(storage, "rejected")) == 1


def test_model_cli_rolls_back_by_hand_and_the_device_does_not_reinstall(broker, tmp_path, keys, tiny_bundle, fleet):
    agent, storage = fleet["agent"], fleet["storage"]
    publish(broker, bundle_version(tiny_bundle, tmp_path / "v2", "2"), keys, tmp_path)
    wait_for_event(storage, "activated", count=2)
    config = tmp_path / "device.toml"
    config.write_text(f'[sync]\nmodels_dir = "{agent.settings.models_dir}"\n')
    runner = CliRunner()
    result = runner.invoke(model_cli, ["rollback", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "tiny_model 1" in result.output
    status = json.loads(runner.invoke(model_cli, ["status", "--config", str(config), "--json"]).output)
    assert status["active"]["version"] == "1" and status["previous"]["version"] == "2"
    agent.ota.submit_connected()  # the retained v2 manifest comes back: already accepted, not re-installed
    time.sleep(1.0)
    assert active_version(agent) == "1"
    assert len(ota_events(storage, "activated")) == 2
    empty = tmp_path / "empty.toml"
    empty.write_text(f'[sync]\nmodels_dir = "{tmp_path / "nothing"}"\n')
    result = runner.invoke(model_cli, ["rollback", "--config", str(empty)])
    assert result.exit_code == 2 and "no previous model" in result.output


def test_publisher_refuses_a_bundle_without_golden_examples(tmp_path, keys, tiny_bundle):
    import shutil

    from shared.bundle import BundleError, read_manifest, save_manifest

    bare = tmp_path / "bare"
    shutil.copytree(tiny_bundle, bare)
    (bare / "golden.jsonl").unlink()
    manifest = read_manifest(bare)
    del manifest["files"]["golden.jsonl"]
    save_manifest(bare, manifest)
    with pytest.raises(BundleError, match="golden"):
        pack_bundle(bare, tmp_path / "bare.tar", keys["private"])


def test_packing_is_deterministic_and_signs_the_bundle_manifest(tmp_path, keys, tiny_bundle):
    import tarfile

    from shared.signing import verify_manifest

    first = pack_bundle(tiny_bundle, tmp_path / "a.tar", keys["private"])
    second = pack_bundle(tiny_bundle, tmp_path / "b.tar", keys["private"])
    assert first.sha256 == second.sha256  # ed25519 signatures are deterministic too
    with tarfile.open(first.path) as tar:
        inner = json.loads(tar.extractfile("manifest.json").read())
    verify_manifest(inner, keys["public"])
    assert canonical_json(sign_manifest(inner, keys["private"])) == canonical_json(inner)
