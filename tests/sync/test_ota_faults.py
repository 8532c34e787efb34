"""Over-the-air updates under bad luck: a crash mid-update, a damaged state file, a corrupt chunk.

No broker: the updater is driven through an in-memory retained store (tests/support/ota_rig.py), so a
"crash" is an exception that stops it at one exact step, and a "boot" is a new updater on the same
models_dir. (tests/sync/test_ota_kill.py does the same with real kill -9s.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from device.model_command import model as model_cli
from device.sync.healthcheck import HealthReport, golden_health_check
from device.sync.ota import OtaUpdater
from device.sync.slots import ModelSlots
from tests.support.ota_rig import RetainedTopics, make_release
from tests.sync.conftest import bundle_version


class Killed(BaseException):
    """The process dies here: nothing after this line runs, the disk keeps what was written."""


def crash(*_args, **_kwargs):
    raise Killed


def failing_health_check(slot: Path) -> HealthReport:
    return HealthReport(False, 4, 0, "0/4 golden examples agree")


@pytest.fixture
def releases(tmp_path, keys, tiny_bundle):
    made = {}
    for sequence, version in enumerate(("1", "2", "3"), start=1):
        bundle = bundle_version(tiny_bundle, tmp_path / f"bundle-v{version}", version)
        made[version] = make_release(bundle, tmp_path, keys["private"], sequence)
    return made


class Device:
    """One device's models_dir, booted as often as a test likes."""

    def __init__(self, models_dir: Path, keys, transport: RetainedTopics):
        self.models_dir, self.keys, self.transport = models_dir, keys, transport
        self.served: list[str] = []
        self.updater: OtaUpdater | None = None

    def boot(self, health_check=golden_health_check) -> OtaUpdater:
        self.updater = OtaUpdater(
            "pi-1",
            "stable",
            self.models_dir,
            self.keys["public"],
            transport=self.transport,
            health_check=health_check,
            on_activated=lambda path: self.served.append(Path(path).resolve().name) or True,
        )
        self.transport.reconnect(self.updater)
        return self.updater

    def offer(self, release, **kwargs) -> None:
        self.transport.offer(release, **kwargs)
        self.transport.deliver_all(self.updater)

    @property
    def active_version(self) -> str | None:
        described = ModelSlots(self.models_dir).describe(ModelSlots(self.models_dir).active())
        return described["version"] if described else None


@pytest.fixture
def device(tmp_path, keys):
    return Device(tmp_path / "models", keys, RetainedTopics())


def test_a_crash_during_the_health_check_never_leaves_the_untested_model_active(device, releases):
    device.boot()
    device.offer(releases["1"])
    assert device.active_version == "1"

    device.updater.health_check = crash
    with pytest.raises(Killed):
        device.offer(releases["2"])

    device.boot(health_check=failing_health_check)  # the retained v2 manifest comes back; v2 is still bad
    assert device.active_version == "1"
    assert ModelSlots(device.models_dir).previous() is None or device.active_version == "1"
    rejected = device.transport.events("rejected")
    assert rejected and rejected[-1]["reason"] == "health_check_failed" and rejected[-1]["version"] == "2"
    assert not [name for name in device.served if name.startswith("2-")], "the daemon never served v2"


def test_a_crash_after_the_swap_but_before_confirmation_boots_back_to_the_confirmed_slot(device, releases):
    device.boot()
    device.offer(releases["1"])

    def killed_while_serving(path):  # the daemon dies loading the new model
        raise Killed

    device.updater.on_activated = killed_while_serving
    with pytest.raises(Killed):
        device.offer(releases["2"])
    assert device.active_version == "2"  # swapped, never confirmed

    updater = device.boot(health_check=failing_health_check)
    assert device.active_version == "1"
    assert updater.status()["pending"] is None
    rolled_back = device.transport.events("rolled_back")
    assert rolled_back and rolled_back[-1]["reason"] == "unconfirmed" and rolled_back[-1]["version"] == "2"


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage"])
def test_a_lost_or_damaged_ota_state_never_lets_an_older_release_back_in(device, releases, damage):
    device.boot()
    device.offer(releases["1"])
    device.offer(releases["2"])
    assert device.active_version == "2"

    state = device.models_dir / "ota_state.json"
    if damage == "missing":
        state.unlink()
    else:
        state.write_text("" if damage == "empty" else '{"accepted_sequence": ')
    device.transport.offer(releases["1"])  # a genuine, signed, older release replayed on the channel
    updater = device.boot()
    assert device.active_version == "2"

    if damage == "missing":  # rebuilt from the active slot's signed manifest: a floor, not a reset
        assert updater.status()["accepted_sequence"] == 2 and updater.status()["alarm"] is None
        assert device.transport.events("rejected")[-1]["reason"] == "downgrade"
        device.offer(releases["3"])
        assert device.active_version == "3"
    else:  # unreadable: refuse every update and say so, until someone repairs the file
        assert "ota_state.json" in updater.status()["alarm"]
        assert device.transport.events("rejected")[-1]["reason"] == "state_unreadable"
        device.offer(releases["3"])
        assert device.active_version == "2"
        assert state.read_text() == ("" if damage == "empty" else '{"accepted_sequence": ')  # evidence kept
        config = device.models_dir.parent / "device.toml"
        config.write_text(f'[sync]\nmodels_dir = "{device.models_dir}"\n')
        shown = CliRunner().invoke(model_cli, ["status", "--config", str(config)])
        assert shown.exit_code == 0 and "ALARM" in shown.output and "ota_state.json" in shown.output


def test_a_corrupt_chunk_is_fetched_again_and_never_blacklists_the_genuine_release(device, releases):
    device.boot()
    device.offer(releases["1"])
    genuine = releases["2"]
    garbled = bytes(b ^ 0xFF for b in genuine.chunks[1])
    device.offer(genuine, corrupt_chunks={1: garbled})
    assert device.active_version == "1"
    paused = device.transport.events("download_paused")
    assert paused and paused[-1]["reason"] == "chunk_corrupt"
    assert not device.transport.events("rejected")
    state = json.loads((device.models_dir / "ota_state.json").read_text())
    assert genuine.manifest["sha256"] not in state["rejected"]

    device.transport.retained[genuine.chunk_topic(1)] = genuine.chunks[1]  # the publisher re-sends it
    updater = device.boot()  # also across a restart: the chunks already on disk are kept
    assert device.active_version == "2"
    assert updater.chunks_written < len(genuine.chunks)
