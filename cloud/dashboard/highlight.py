"""A posting excerpt with the skills that matter highlighted (spans from `shared.skills`), escaped."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from shared.skills import find_skills

CONTEXT_CHARS = 260


def highlighted_excerpt(text: str, skills: list[str], context: int = CONTEXT_CHARS) -> Markup:
    """The part of `text` around its first mention of one of `skills`, each such mention in <mark>."""
    wanted = set(skills)
    spans = [m for m in find_skills(text) if m.name in wanted]
    if not spans:
        return Markup(escape(text[: 2 * context]))
    start = max(0, spans[0].start - context)
    end = min(len(text), spans[0].end + context)
    pieces, cursor = ["…" if start else ""], start
    for match in spans:
        if match.start < cursor or match.end > end:
            continue
        pieces.append(escape(text[cursor : match.start]))
        pieces.append(f'<mark title="{escape(match.name)}">{escape(text[match.start : match.end])}</mark>')
        cursor = match.end
    pieces.append(escape(text[cursor:end]) + ("…" if end < len(text) else ""))
    return Markup("".join(pieces))
