"""Offline, explainable career advice for one posting. No LLM: every line cites the data behind it.

Inputs: the posting text, the class the model gave it, and the user's profile skills (config
`[profile] skills`, or typed into the UI). Outputs:

* the skills the posting names (shared.skills, with the alias that fired);
* the fit: which of them the user has, the gap list (the ones they lack), and which class their
  profile leans to;
* the next skills to learn, ranked by demand.

Demand comes from one of two sources, and the advice says which:

1. the last drift statistics file, when it exists (`[profile] trends_file`; the cloud's monitoring
   writes it and sync can bring it down). Format::

       {"generated_at": "2026-03-02T00:00:00Z", "window": "2026-W09", "documents": 1200,
        "skills": {"LangChain": {"share": 0.14, "baseline_share": 0.09}, ...}}

   `share` is the fraction of recent postings naming the skill, `baseline_share` the 2025 fraction.
   A skill is "rising" when share > baseline_share;
2. otherwise the 2025 baseline counts in `shared/skill_baseline_2025.json` (generated from the
   committed CSV by `scripts/build_skill_baseline.py`): how many 2025 postings of the predicted class
   name the skill.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from shared.labels import LABEL_NAMES
from shared.monitoring.trends import TRENDS_IN_BUNDLE, TrendsError, check_trends
from shared.skills import SKILLS_BY_NAME, SkillMatch, canonical_skill, find_skills

log = logging.getLogger(__name__)

NEXT_SKILLS = 5
NEXT_FROM_GAPS = 3  # the rest of the next-skills list comes from market demand beyond this posting


@dataclass(frozen=True)
class Demand:
    """How much the market asks for one skill, and the sentence that says where that comes from."""

    score: float  # fraction of postings naming the skill (class-specific for the baseline)
    evidence: str


@dataclass
class SkillLine:
    name: str
    category: str
    reason: str


@dataclass
class Advice:
    label: int
    label_name: str
    probability: float
    posting_skills: list[dict]  # {name, category, aliases, in_profile}
    profile_skills: list[str]  # canonical names the user has
    unknown_profile_skills: list[str]  # typed by the user but not in the skills table
    matched: list[str]  # posting skills the user has
    gaps: list[SkillLine]  # posting skills the user lacks, most demanded first
    next_skills: list[SkillLine]
    profile_leaning: dict | None  # {label, label_name, votes, total} or None
    demand_source: dict  # {kind: "drift"|"baseline", description, path}
    lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


class DemandTable:
    """Skill demand, from drift statistics when present, else from the 2025 baseline."""

    def __init__(self, baseline: dict, trends: dict | None = None, trends_path: Path | None = None):
        self.baseline = baseline
        self.trends = trends
        self.trends_path = trends_path

    @classmethod
    def load(cls, trends_file: Path | None = None, bundle_dir: Path | None = None) -> DemandTable:
        """The baseline plus the first readable trends file: `trends_file`, else the one the active
        bundle carries (`trends.json`, covered by its signed manifest; the cloud's `monitor --bundle`)."""
        baseline_text = resources.files("shared").joinpath("skill_baseline_2025.json").read_text("utf-8")
        baseline = json.loads(baseline_text)
        candidates = [trends_file, Path(bundle_dir) / TRENDS_IN_BUNDLE if bundle_dir is not None else None]
        for path in (Path(p) for p in candidates if p is not None):
            if path.is_file() and (trends := _read_trends(path)) is not None:
                return cls(baseline, trends, path)
        return cls(baseline)

    @property
    def source(self) -> dict:
        if self.trends is not None:
            return {
                "kind": "drift",
                "path": str(self.trends_path),
                "description": f"drift statistics for {self.trends.get('window', 'the last window')} "
                f"({self.trends.get('documents', '?')} postings, "
                f"generated {self.trends.get('generated_at', '?')})",
            }
        documents = self.baseline["documents"]
        return {
            "kind": "baseline",
            "path": "shared/skill_baseline_2025.json",
            "description": f"2025 baseline: {documents['all']} postings from "
            f"{self.baseline['source']} ({documents['0']} Software Engineering, "
            f"{documents['1']} Data Science by title)",
        }

    def baseline_share(self, name: str, label: int) -> tuple[int, int]:
        """(postings of class `label` naming the skill, postings of that class) in 2025."""
        entry = self.baseline["skills"].get(name)
        total = self.baseline["documents"][str(label)]
        return (entry["by_label"][str(label)] if entry else 0), total

    def demand(self, name: str, label: int) -> Demand:
        if self.trends is not None:
            stats = self.trends["skills"].get(name)
            if stats is not None:
                share, before = float(stats.get("share", 0.0)), float(stats.get("baseline_share", 0.0))
                direction = "up from" if share > before else "down from" if share < before else "same as"
                return Demand(
                    share,
                    f"in {share:.0%} of recent postings, {direction} {before:.0%} in 2025 "
                    f"({self.trends.get('window', 'last window')})",
                )
            return Demand(0.0, "not seen in the recent postings")
        count, total = self.baseline_share(name, label)
        share = count / total if total else 0.0
        if count == 0:
            return Demand(0.0, f"in none of the {total} 2025 {LABEL_NAMES[label]} postings (new since then)")
        return Demand(share, f"in {share:.0%} of 2025 {LABEL_NAMES[label]} postings ({count} of {total})")

    def ranked(self, label: int) -> list[tuple[str, Demand]]:
        """Every skill with demand > 0, most demanded (or fastest rising) first."""
        if self.trends is not None:

            def lift(item):
                stats = self.trends["skills"][item]
                return float(stats.get("share", 0)) - float(stats.get("baseline_share", 0))

            names = sorted((n for n in self.trends["skills"] if n in SKILLS_BY_NAME), key=lift, reverse=True)
            return [(n, self.demand(n, label)) for n in names if lift(n) > 0]
        scored = [(name, self.demand(name, label)) for name in self.baseline["skills"]]
        return sorted((item for item in scored if item[1].score > 0), key=lambda item: -item[1].score)


def _read_trends(path: Path) -> dict | None:
    """A trends file checked (shared.monitoring.trends): unknown skills and bad shares are dropped and
    logged; an unreadable file gives None, so advice falls back to the baseline, loudly."""
    try:
        trends, problems = check_trends(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TrendsError) as exc:
        log.warning("advice.trends_unreadable", extra={"fields": {"path": str(path), "error": str(exc)}})
        return None
    if problems:
        log.warning("advice.trends_entries_ignored", extra={"fields": {"path": str(path), "problems": problems}})
    return trends


def normalise_profile(skills: Iterable[str]) -> tuple[list[str], list[str]]:
    """User-typed skills -> (canonical names, entries not in the skills table)."""
    known, unknown = [], []
    for raw in skills:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            name = canonical_skill(part)
            (known if name else unknown).append(name or part)
    return list(dict.fromkeys(known)), list(dict.fromkeys(unknown))


def _profile_leaning(table: DemandTable, profile: list[str]) -> dict | None:
    """Which class the user's skills are more typical of, by 2025 share per class (one vote each)."""
    votes = {0: 0, 1: 0}
    for name in profile:
        share = {label: (lambda c, t: c / t if t else 0.0)(*table.baseline_share(name, label)) for label in votes}
        if share[0] != share[1]:
            votes[max(share, key=share.get)] += 1
    total = votes[0] + votes[1]
    if total == 0:
        return None
    leaning = max(votes, key=votes.get) if votes[0] != votes[1] else None
    return {
        "label": leaning,
        "label_name": LABEL_NAMES.get(leaning, "neither class"),
        "votes": {str(k): v for k, v in votes.items()},
        "total": total,
    }


def advise(
    text: str,
    label: int,
    probability: float,
    profile_skills: Iterable[str] = (),
    table: DemandTable | None = None,
    matches: list[SkillMatch] | None = None,
) -> Advice:
    table = table or DemandTable.load()
    matches = find_skills(text) if matches is None else matches
    profile, unknown = normalise_profile(profile_skills)
    have = set(profile)

    aliases: dict[str, list[str]] = {}
    for match in matches:
        aliases.setdefault(match.name, [])
        if match.alias not in aliases[match.name]:
            aliases[match.name].append(match.alias)
    posting = [
        {"name": name, "category": SKILLS_BY_NAME[name].category, "aliases": spelled, "in_profile": name in have}
        for name, spelled in aliases.items()
    ]

    matched = [s["name"] for s in posting if s["in_profile"]]
    gap_names = sorted(
        (s["name"] for s in posting if not s["in_profile"]), key=lambda name: -table.demand(name, label).score
    )
    gaps = [
        SkillLine(name, SKILLS_BY_NAME[name].category, f"named in this posting; {table.demand(name, label).evidence}")
        for name in gap_names
    ]

    next_skills = [SkillLine(g.name, g.category, g.reason) for g in gaps[:NEXT_FROM_GAPS]]
    for name, demand in table.ranked(label):
        if len(next_skills) >= NEXT_SKILLS:
            break
        if name not in have and name not in aliases:
            next_skills.append(
                SkillLine(name, SKILLS_BY_NAME[name].category, f"not in this posting, but {demand.evidence}")
            )

    leaning = _profile_leaning(table, profile) if profile else None
    advice = Advice(
        label=label,
        label_name=LABEL_NAMES[label],
        probability=probability,
        posting_skills=posting,
        profile_skills=profile,
        unknown_profile_skills=unknown,
        matched=matched,
        gaps=gaps,
        next_skills=next_skills,
        profile_leaning=leaning,
        demand_source=table.source,
    )
    advice.lines = _lines(advice)
    return advice


def _lines(advice: Advice) -> list[str]:
    """The advice as plain sentences (TUI, logs); the web page renders the same fields."""
    lines = [f"This posting reads as {advice.label_name} (probability {advice.probability:.0%})."]
    if advice.posting_skills:
        names = ", ".join(s["name"] for s in advice.posting_skills)
        lines.append(f"It names {len(advice.posting_skills)} skills: {names}.")
    else:
        lines.append("It names none of the skills in the skills table (shared/skills.py).")
    if not advice.profile_skills:
        lines.append(
            "No profile skills given: set [profile] skills in the config (or type them in) "
            "to see what you already cover."
        )
    elif advice.posting_skills:
        share = len(advice.matched) / len(advice.posting_skills)
        lines.append(
            f"You have {len(advice.matched)} of them ({share:.0%})"
            + (f": {', '.join(advice.matched)}." if advice.matched else ".")
        )
    if advice.unknown_profile_skills:
        lines.append("Not in the skills table, so not compared: " + ", ".join(advice.unknown_profile_skills) + ".")
    if advice.profile_leaning:
        lean = advice.profile_leaning
        count = lean["votes"][str(lean["label"])] if lean["label"] is not None else lean["total"] // 2
        lines.append(
            f"Your profile leans {lean['label_name']}: {count} of {lean['total']} of your skills "
            "are more common in 2025 postings of that class."
        )
    for gap in advice.gaps:
        lines.append(f"Gap: {gap.name}, {gap.reason}.")
    gap_names = {gap.name for gap in advice.gaps}
    for rank, skill in enumerate(advice.next_skills, start=1):
        reason = "a gap above" if skill.name in gap_names else skill.reason
        lines.append(f"Next to learn {rank}: {skill.name} ({reason}).")
    lines.append(f"Demand figures: {advice.demand_source['description']}.")
    return lines
