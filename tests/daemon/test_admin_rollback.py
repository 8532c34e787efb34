"""The token-protected web admin action that switches back to the previous over-the-air slot."""

from __future__ import annotations

import shutil

from device.daemon import Daemon
from device.sync.slots import ModelSlots
from device.web import create_app
from shared.bundle import read_manifest, write_bundle
from tests.daemon.conftest import make_config

TOKEN = "rollback-token-0123456789"


def _slot_copy(tiny_bundle, tmp_path, version: str):
    copy = tmp_path / f"staging-v{version}"
    shutil.copytree(tiny_bundle, copy)
    manifest = read_manifest(copy)
    (copy / "manifest.json").unlink()
    write_bundle(
        copy,
        name=manifest["name"],
        version=version,
        labels={int(k): v for k, v in manifest["labels"].items()},
        max_length=manifest["max_length"],
        preprocessing=manifest.get("preprocessing", "clean"),
    )
    return copy


def test_admin_rollback_swaps_slots_and_serves_the_previous_model(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)
    config.override("admin", token=TOKEN)
    slots = ModelSlots(config.sync.models_dir)
    slots.activate(slots.install(_slot_copy(tiny_bundle, tmp_path, "1"), "v1"))
    slots.activate(slots.install(_slot_copy(tiny_bundle, tmp_path, "2"), "v2"))
    daemon = Daemon(config, bundle_dir=slots.active_link)
    client = create_app(daemon).test_client()
    try:
        assert client.get("/healthz").get_json()["model"]["version"] == "tiny_model@2"
        assert client.post("/api/v1/admin/rollback").status_code == 401
        response = client.post("/api/v1/admin/rollback", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["active_slot"] == "v1"
        assert client.get("/healthz").get_json()["model"]["version"] == "tiny_model@1"
        assert slots.active().name == "v1" and slots.previous().name == "v2"
    finally:
        daemon.close()


def test_admin_rollback_without_a_previous_slot_is_a_409(tmp_path, tiny_bundle):
    config = make_config(tmp_path, tiny_bundle)
    config.override("admin", token=TOKEN)
    daemon = Daemon(config, bundle_dir=tiny_bundle)
    try:
        response = (
            create_app(daemon)
            .test_client()
            .post("/api/v1/admin/rollback", headers={"Authorization": f"Bearer {TOKEN}"})
        )
        assert response.status_code == 409 and "no previous model" in response.get_json()["error"]
        assert daemon.model_info()["loaded"]
    finally:
        daemon.close()
