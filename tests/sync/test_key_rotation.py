"""Signing-key rotation: a record signed by the old key makes the new one trusted, on the device too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.publisher.command import keygen_command, load_rotation_chain
from device.sync.ota import OtaUpdater
from device.sync.slots import ModelSlots
from shared.errors import UserError
from shared.signing import Keyring, SignatureError, apply_rotations, key_id, sign_manifest, sign_rotation
from tests.support.ota_rig import RetainedTopics, make_release
from tests.sync.conftest import bundle_version

A, B, C = (Ed25519PrivateKey.generate() for _ in range(3))


def ids(*private_keys) -> list[str]:
    return sorted(key_id(k.public_key()) for k in private_keys)


def test_a_chain_of_rotations_leads_from_any_trusted_key_to_the_newest():
    chain = [sign_rotation(A, B.public_key()), sign_rotation(B, C.public_key(), retire_old=True)]
    assert apply_rotations(Keyring([A.public_key()]), chain).ids == ids(A, C)  # B retired on the way
    assert apply_rotations(Keyring([B.public_key()]), chain).ids == ids(C)
    assert apply_rotations(Keyring([C.public_key()]), chain).ids == ids(C)
    start = Keyring([A.public_key()])
    apply_rotations(start, chain)
    assert start.ids == ids(A), "the keyring passed in never changes"


def test_rotations_not_signed_by_a_trusted_key_grant_nothing():
    assert apply_rotations(Keyring([A.public_key()]), [sign_rotation(B, C.public_key())]).ids == ids(A)
    swapped = {**sign_rotation(A, B.public_key()), "new_key": sign_rotation(A, C.public_key())["new_key"]}
    with pytest.raises(SignatureError) as mismatch:
        apply_rotations(Keyring([A.public_key()]), [swapped])
    assert mismatch.value.reason == "bad_rotation"  # new_key no longer matches new_key_id
    forged = sign_rotation(A, B.public_key())
    forged = {**forged, "retire_old": not forged["retire_old"]}
    with pytest.raises(SignatureError) as tampered:
        apply_rotations(Keyring([A.public_key()]), [forged])
    assert tampered.value.reason == "bad_signature"
    retired = Keyring([A.public_key(), B.public_key()], retired=[key_id(B.public_key())])
    with pytest.raises(SignatureError):
        from shared.signing import verify_manifest

        verify_manifest(sign_manifest({"x": 1}, B), retired)


def test_a_device_pinned_to_the_old_key_installs_a_release_signed_by_the_new_one(tmp_path, tiny_bundle):
    models_dir = tmp_path / "models"
    transport = RetainedTopics()

    def boot() -> OtaUpdater:
        updater = OtaUpdater("pi-1", "stable", models_dir, A.public_key(), transport=transport)
        transport.reconnect(updater)
        return updater

    def release(version: str, sequence: int, signer, rotations=None):
        bundle = bundle_version(tiny_bundle, tmp_path / f"v{version}", version)
        return make_release(bundle, tmp_path, signer, sequence, key_rotations=rotations)

    def active() -> str | None:
        described = ModelSlots(models_dir).describe(ModelSlots(models_dir).active())
        return described["version"] if described else None

    updater = boot()
    transport.offer(release("1", 1, A))
    transport.deliver_all(updater)
    assert active() == "1"

    transport.offer(release("2", 2, B, rotations=[sign_rotation(A, B.public_key(), retire_old=True)]))
    transport.deliver_all(updater)
    assert active() == "2"
    assert updater.status()["trusted_keys"] == ids(B)

    updater = boot()  # the learned key and the retirement survive a restart; the config still pins A
    transport.offer(release("3", 3, A))
    transport.deliver_all(updater)
    assert active() == "2" and transport.events("rejected")[-1]["reason"] == "unknown_key"
    transport.offer(release("4", 4, B))  # no rotation records needed any more
    transport.deliver_all(updater)
    assert active() == "4"


def test_keygen_rotates_and_publish_checks_the_chain(tmp_path):
    runner = CliRunner()
    old, old_pub = tmp_path / "old.pem", tmp_path / "old.pub.pem"
    assert runner.invoke(keygen_command, ["--private", str(old), "--public", str(old_pub)]).exit_code == 0
    new, new_pub = tmp_path / "new.pem", tmp_path / "new.pub.pem"
    result = runner.invoke(
        keygen_command, ["--private", str(new), "--public", str(new_pub), "--rotate-from", str(old), "--retire-old"]
    )
    assert result.exit_code == 0, result.output
    record_path = tmp_path / "new.pub.rotation.json"
    record = json.loads(record_path.read_text())
    assert record["retire_old"] is True and f"-> {record['new_key_id']}" in result.output

    from shared.signing import load_private_key

    assert load_rotation_chain([record_path], load_private_key(new)) == [record]
    with pytest.raises(UserError, match="do not lead to --key"):
        load_rotation_chain([record_path], load_private_key(old))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**record, "new_key_id": "0" * 16}))
    with pytest.raises(UserError, match="do not verify"):
        load_rotation_chain([Path(forged)], load_private_key(new))
