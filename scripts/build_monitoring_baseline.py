"""Write the 2025 monitoring baseline the device compares its own traffic with.

The device has no 2025 rows (and no pandas): it gets their profile instead, the counts that skew
needs (`shared.monitoring.drift.Profile`: postings per skill and category flag, per class, and the
text-length histogram over the 2025 deciles). This script builds the 2025 training split from the
committed Kaggle CSV with the pipeline's own prepare and label steps (params.yaml `split:`), projects
it (`cloud.monitoring.baseline`) and writes `shared/monitoring/baseline_2025.json`. Re-run it when the
CSV, the skills table, the taxonomy or the split change (a test fails while the file is stale):

    python scripts/build_monitoring_baseline.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cloud.data.prepare import run_label, run_prepare  # noqa: E402
from cloud.monitoring.baseline import baseline_table  # noqa: E402
from cloud.params import load_params  # noqa: E402
from shared.files import atomic_write_json, sha256_file  # noqa: E402
from shared.monitoring.drift import Profile  # noqa: E402

DEFAULT_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"
DEFAULT_OUT = REPO_ROOT / "shared" / "monitoring" / "baseline_2025.json"


def build_profile(csv_path: Path, params_path: Path = REPO_ROOT / "params.yaml") -> dict:
    split = load_params(params_path)["split"]
    with tempfile.TemporaryDirectory(prefix="careeredge-baseline-") as tmp:
        run_prepare(csv_path, Path(tmp) / "interim")
        run_label(
            Path(tmp) / "interim" / "postings_2025.jsonl",
            Path(tmp) / "processed",
            (split["train"], split["val"], split["test"]),
            split["seed"],
        )
        profile = Profile.of(baseline_table(Path(tmp) / "processed" / "splits"))
    return {
        "description": "Profile of the 2025 training split for monitoring (counts per feature). Generated, do not edit.",
        "generated_by": "python scripts/build_monitoring_baseline.py",
        "source_sha256": sha256_file(csv_path),
        "name": "2025 train",
        "profile": profile.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    payload = build_profile(args.csv)
    atomic_write_json(args.out, payload)
    print(f"{args.out}: {payload['profile']['documents']} postings, {json.dumps(payload['profile']['class_counts'])}")


if __name__ == "__main__":
    main()
