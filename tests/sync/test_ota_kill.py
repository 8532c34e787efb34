"""kill -9 during each step of an over-the-air update (download, verify, stage, health check, swap):
after the boot the device serves a healthy, signed v1 or v2, never an unconfirmed slot, and the
update then completes. One kill per step here; scripts/bench_faults.py runs 20 per step."""

from __future__ import annotations

import random

import pytest

from tests.support.ota_kill import STAGE_POINTS, STEPS, prepare, run_once
from tests.sync.conftest import bundle_version


@pytest.fixture(scope="module")
def ota_device(tmp_path_factory, keys, tiny_bundle):
    work = tmp_path_factory.mktemp("ota-kill")
    releases_dir, template = prepare(
        work, tiny_bundle, keys["private"], lambda src, dest, version: bundle_version(src, dest, version)
    )
    return work, releases_dir, template


@pytest.mark.parametrize("step", STEPS)
def test_kill_9_during_an_update_boots_on_a_confirmed_signed_healthy_slot(ota_device, keys, step):
    work, releases_dir, template = ota_device
    # Seed 3 puts the kill inside the step for every step (checked: `killed`).
    outcome = run_once(step, 3, work, template, releases_dir, keys["public_path"], keys["public"])
    assert outcome.killed, f"the kill at {step} never fired"
    assert outcome.ok, outcome.problems
    assert outcome.served_after_boot in ("1", "2") and outcome.signed and outcome.healthy
    assert outcome.finished_on == "2"


def seed_killing_the_stage_after(point: str) -> int:
    """The first seed whose kill inside the stage step lands right after `point`'s work (place_kill
    draws before/after, then the point)."""
    for seed in range(1000):
        rng = random.Random(seed)
        after = rng.random() < 0.5
        if after and rng.choice(STAGE_POINTS) == point:
            return seed
    raise AssertionError(point)


@pytest.mark.parametrize("point", STAGE_POINTS)
def test_kill_9_right_after_each_point_of_staging(ota_device, keys, point):
    """Every point of the stage step, whatever seed 3 draws (a kill after writing the slot record once
    broke the harness itself: the hook dropped `staticmethod`)."""
    work, releases_dir, template = ota_device
    seed = seed_killing_the_stage_after(point)
    outcome = run_once("stage", seed, work, template, releases_dir, keys["public_path"], keys["public"])
    assert outcome.killed and outcome.ok, outcome.problems
    assert outcome.finished_on == "2"
