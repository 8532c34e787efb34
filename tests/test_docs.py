"""The README and docs/ stay usable: every relative link and #anchor resolves, the README stays short,
and the project's text describes the project (dated results), not the story of its development."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"```.*?```", flags=re.S)
README_MAX_LINES = 250
# Numbered work rounds and ticket talk belong in git history and the closing notes, not in the project.
DIARY = re.compile(r"\b(session|round|sprint) \d+\b|\bthe issue (asked|asks|wants)\b", flags=re.I)


def github_slug(heading: str) -> str:
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path, text: str | None = None) -> list[str]:
    text = path.read_text(encoding="utf-8") if text is None else text
    broken = []
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists() or ROOT not in (dest, *dest.parents):
            broken.append(f"{path.relative_to(ROOT)}: {target}: no such file")
        elif fragment and (dest.suffix != ".md" or fragment not in anchors(dest)):
            broken.append(f"{path.relative_to(ROOT)}: {target}: no heading #{fragment}")
    return broken


def test_the_link_checker_sees_broken_links():
    text = "[ok](../README.md) [x](missing.md) [y](../README.md#no-such-heading) ```[z](in-code.md)```"
    assert len(broken_links(ROOT / "docs" / "probe.md", text)) == 2


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES


def test_no_development_diary_in_the_project_text():
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "*.md", "*.py", "*.toml", "*.yaml", "*.sh", "*.service", "Makefile"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    hits = [
        f"{name}:{number}: {line.strip()[:80]}"
        for name in tracked
        if name != "tests/test_docs.py" and (ROOT / name).is_file()
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), start=1)
        if DIARY.search(line)
    ]
    assert hits == []
