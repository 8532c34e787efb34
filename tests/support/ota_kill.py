"""kill -9 at every step of an over-the-air update, then boot and check what the device serves.

A child process runs a real `OtaUpdater` on a device directory (v1 installed and confirmed) and
installs v2 from an in-memory retained store; a hook placed at one step sends it SIGKILL at a point
drawn from a seed. The parent then boots a new updater on the same directory, as the device would
after a power cut, and checks the invariant:

    the device serves a healthy, signed slot that is the newest (v2) or the previous one (v1), and
    never one whose swap was left unconfirmed;

then lets the update finish and checks that it ends on v2. Used by tests/sync/test_ota_kill.py
(one kill per step) and scripts/bench_faults.py (20 per step).

    python -m tests.support.ota_kill DEVICE_DIR RELEASES_DIR PUBLIC_KEY STEP SEED   (the child)
"""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.ota_rig import Release, RetainedTopics, make_release

STEPS = ("download", "verify", "stage", "health_check", "swap")
REPO_ROOT = Path(__file__).resolve().parents[2]


# --- the parent: releases, a device with v1, kill, boot, check --------------------------------------


def prepare(work: Path, bundle_dir: Path, private_key, bump_version) -> tuple[Path, Path]:
    """Write v1 and v2 (signed, chunked) under `work/releases` and a device with v1 confirmed under
    `work/device-template`. `bump_version(src, dest, version)` makes a re-versioned bundle copy."""
    releases_dir = work / "releases"
    for sequence, version in ((1, "1"), (2, "2")):
        bundle = bump_version(bundle_dir, work / f"bundle-v{version}", version)
        save_release(make_release(bundle, work, private_key, sequence), releases_dir / version)
    template = work / "device-template"
    transport = RetainedTopics()
    updater = _updater(template / "models", load_public(private_key), transport)
    transport.offer(load_release(releases_dir / "1"))
    transport.reconnect(updater)
    assert _active_version(template / "models") == "1", "v1 did not install on the template device"
    return releases_dir, template


def save_release(release: Release, folder: Path) -> None:
    (folder / "chunks").mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(release.manifest))
    for index, chunk in enumerate(release.chunks):
        (folder / "chunks" / f"{index:05d}").write_bytes(chunk)


def load_release(folder: Path) -> Release:
    manifest = json.loads((folder / "manifest.json").read_text())
    chunks = [path.read_bytes() for path in sorted((folder / "chunks").iterdir())]
    return Release(manifest["version"], manifest, chunks)


def load_public(private_key):
    return private_key.public_key()


@dataclass
class KillOutcome:
    step: str
    seed: int
    killed: bool  # the hook fired (False: the update finished before the drawn point)
    unconfirmed_at_kill: bool  # a swap was pending when the process died
    served_after_boot: str | None  # version the device serves once booted
    signed: bool
    healthy: bool
    confirmed: bool
    finished_on: str | None  # version after letting the update complete
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def kill_during(step: str, seed: int, device_dir: Path, releases_dir: Path, public_key_path: Path) -> bool:
    """Run the v2 update in a child that kills itself at `step`; True when it died by SIGKILL."""
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.ota_kill",
            str(device_dir),
            str(releases_dir),
            str(public_key_path),
            step,
            str(seed),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if child.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"OTA child failed ({child.returncode}): {child.stderr[-2000:]}")
    return child.returncode == -signal.SIGKILL


def run_once(
    step: str, seed: int, work: Path, template: Path, releases_dir: Path, public_key_path: Path, public_key
) -> KillOutcome:
    from device.sync.healthcheck import golden_health_check
    from device.sync.slots import ModelSlots
    from shared.bundle import BundleError, verify_bundle
    from shared.signing import SignatureError, verify_manifest

    device_dir = work / f"device-{step}-{seed}"
    shutil.rmtree(device_dir, ignore_errors=True)
    shutil.copytree(template, device_dir, symlinks=True)
    models_dir = device_dir / "models"
    killed = kill_during(step, seed, device_dir, releases_dir, public_key_path)
    problems: list[str] = []

    slots = ModelSlots(models_dir)
    pending = slots.pending()
    served_before_boot = slots.describe(slots.confirmed_active())  # what a daemon starting now would load
    if pending is not None and served_before_boot and served_before_boot["slot"] == pending.get("slot"):
        problems.append("a daemon starting before the agent would serve the unconfirmed slot")

    transport = RetainedTopics()
    updater = _updater(models_dir, public_key, transport)  # the boot: an unconfirmed swap goes back
    active = slots.active()
    described = slots.describe(active)
    served = described["version"] if described else None
    signed = healthy = False
    if served not in ("1", "2"):
        problems.append(f"serves {served!r}, neither the newest nor the previous release")
    if slots.pending() is not None:
        problems.append("a swap is still pending after the boot")
    if active is not None:
        try:
            verify_manifest(verify_bundle(active), public_key)
            signed = True
        except (BundleError, SignatureError) as exc:
            problems.append(f"active slot not signed/intact: {exc}")
        report = golden_health_check(active)
        healthy = report.ok
        if not healthy:
            problems.append(f"active slot unhealthy: {report.detail}")
    confirmed = served != "2" or updater.state["accepted_sequence"] >= 2
    if not confirmed:
        problems.append("serves v2 without having confirmed it")

    transport.offer(load_release(releases_dir / "2"))
    transport.reconnect(updater)
    finished = slots.describe(slots.active())
    finished_on = finished["version"] if finished else None
    if finished_on != "2":
        problems.append(f"the resumed update ended on {finished_on!r}, not v2")
    shutil.rmtree(device_dir, ignore_errors=True)
    return KillOutcome(
        step, seed, killed, pending is not None, served, signed, healthy, confirmed, finished_on, problems
    )


def _updater(models_dir: Path, public_key, transport: RetainedTopics):
    from device.sync.ota import OtaUpdater

    return OtaUpdater("pi-kill", "stable", models_dir, public_key, transport=transport, on_activated=lambda path: True)


def _active_version(models_dir: Path) -> str | None:
    from device.sync.slots import ModelSlots

    described = ModelSlots(models_dir).describe(ModelSlots(models_dir).active())
    return described["version"] if described else None


# --- the child: the update with a SIGKILL placed by the seed -----------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(owner, name: str, nth: int, after: bool) -> None:
    """Replace owner.name so that its nth call dies before (or right after) doing its work."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def hooked(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth and not after:
            _die()
        result = original(*args, **kwargs)
        if calls["n"] == nth and after:
            _die()
        return result

    # A staticmethod replaced by a plain function would be handed `self` when called on an instance.
    static = isinstance(inspect.getattr_static(owner, name), staticmethod)
    setattr(owner, name, staticmethod(hooked) if static else hooked)


STAGE_POINTS = ("unpack", "record", "install")  # where a kill inside the stage step lands


def place_kill(step: str, rng: random.Random, updater, release: Release) -> str:
    """Arm one kill inside `step`; returns a description of the point."""
    import device.sync.ota as ota
    from device.sync.download import ChunkedDownload
    from device.sync.slots import ModelSlots

    after = rng.random() < 0.5
    if step == "download":
        nth = rng.randint(1, len(release.chunks))
        _kill_on_call(ChunkedDownload, "write_chunk", nth, after)
        return f"chunk write {nth}/{len(release.chunks)} ({'after' if after else 'before'})"
    if step == "verify":
        _kill_on_call(ChunkedDownload, "verify", 1, after)
        return f"whole-file check ({'after' if after else 'before'})"
    if step == "stage":
        point = rng.choice(STAGE_POINTS)
        if point == "unpack":
            nth = rng.randint(1, 4)
            _kill_on_call(ota.shutil, "copyfileobj", nth, after)
            return f"unpacking file {nth}"
        if point == "record":
            _kill_on_call(ota.OtaUpdater, "_write_slot_record", 1, after)
            return "writing the slot record"
        _kill_on_call(ModelSlots, "install", 1, after)
        return f"slot rename ({'after' if after else 'before'})"
    if step == "health_check":
        _kill_on_call(updater, "health_check", 1, after)
        return f"health check ({'after' if after else 'before'})"
    if step == "swap":
        point = rng.choice(["marker", "link", "daemon", "confirm"])
        if point == "marker":
            _kill_on_call(ModelSlots, "activate", 1, after=False)
            return "pending marker written, no link swapped yet"
        if point == "link":
            nth = rng.randint(1, 2)
            _kill_on_call(ModelSlots, "_swap_link", nth, after)
            return f"link swap {nth}/2 ({'after' if after else 'before'})"
        if point == "daemon":
            _kill_on_call(updater, "on_activated", 1, after)
            return f"daemon reload ({'after' if after else 'before'})"
        _kill_on_call(ModelSlots, "confirm", 1, after)
        return f"confirmation ({'after' if after else 'before'})"
    raise ValueError(f"unknown step {step!r}")


def child_main(argv: list[str]) -> None:
    device_dir, releases_dir, public_key_path, step, seed = argv
    from shared.signing import load_public_key

    transport = RetainedTopics()
    updater = _updater(Path(device_dir) / "models", load_public_key(Path(public_key_path)), transport)
    release = load_release(Path(releases_dir) / "2")
    place_kill(step, random.Random(int(seed)), updater, release)
    transport.offer(release)
    transport.reconnect(updater)


if __name__ == "__main__":
    child_main(sys.argv[1:])
