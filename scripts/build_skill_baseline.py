"""Count how many 2025 postings mention each skill, overall and per class, into a small JSON.

The device's career advice needs "what does the market ask for" without shipping the CSV or pandas:
this script turns the committed 2025 Kaggle CSV into `shared/skill_baseline_2025.json` (a few KB).
Classes come from the title taxonomy (shared.labels), exactly as training labels do; skills from
shared.skills on the cleaned description. Re-run it whenever either table changes:

    python scripts/build_skill_baseline.py            # writes shared/skill_baseline_2025.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from shared.labels import LABEL_NAMES, classify_title  # noqa: E402
from shared.skills import SKILLS_BY_NAME, skill_names  # noqa: E402
from shared.text import clean_text  # noqa: E402

DEFAULT_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"
DEFAULT_OUT = REPO_ROOT / "shared" / "skill_baseline_2025.json"


def build_baseline(csv_path: Path) -> dict:
    documents: Counter[str] = Counter()
    skill_documents: dict[str, Counter[str]] = {}
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            label = classify_title(row.get("positionName"))
            group = "unlabeled" if label is None else str(label)
            documents["all"] += 1
            documents[group] += 1
            for name in skill_names(clean_text(row.get("description") or "")):
                counts = skill_documents.setdefault(name, Counter())
                counts["all"] += 1
                counts[group] += 1
    skills = {
        name: {
            "category": SKILLS_BY_NAME[name].category,
            "documents": counts["all"],
            "by_label": {str(label): counts[str(label)] for label in LABEL_NAMES},
        }
        for name, counts in sorted(skill_documents.items(), key=lambda item: (-item[1]["all"], item[0]))
    }
    return {
        "description": "Number of 2025 postings mentioning each skill (a posting counts once per skill), "
        "overall and per class (title taxonomy). Generated, do not edit.",
        "generated_by": "python scripts/build_skill_baseline.py",
        "source": str(csv_path.relative_to(REPO_ROOT)) if csv_path.is_relative_to(REPO_ROOT) else str(csv_path),
        "source_sha256": hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        "labels": {str(label): name for label, name in LABEL_NAMES.items()},
        "documents": {
            "all": documents["all"],
            "unlabeled": documents["unlabeled"],
            **{str(label): documents[str(label)] for label in LABEL_NAMES},
        },
        "skills": skills,
    }


def to_json(baseline: dict) -> str:
    """Indented JSON with one line per skill, so a regenerated file diffs readably."""
    head = {key: value for key, value in baseline.items() if key != "skills"}
    lines = json.dumps(head, indent=1, ensure_ascii=False)[:-2].splitlines()
    skills = [
        f"  {json.dumps(name, ensure_ascii=False)}: {json.dumps(entry, ensure_ascii=False)}"
        for name, entry in baseline["skills"].items()
    ]
    return "\n".join(lines) + ',\n "skills": {\n' + ",\n".join(skills) + "\n }\n}\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    baseline = build_baseline(args.csv)
    args.out.write_text(to_json(baseline), encoding="utf-8")
    top = list(baseline["skills"].items())[:5]
    print(
        f"{args.out}: {baseline['documents']} postings, {len(baseline['skills'])} skills; top: "
        + ", ".join(f"{name} {entry['documents']}" for name, entry in top)
    )


if __name__ == "__main__":
    main()
