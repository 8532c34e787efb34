"""The fast model input is the model input the models were trained on: old and new, every committed posting.

`shared.text.clean_text` / `skills_first` and `shared.skills.find_skills` were rewritten for speed
(literal pre-checks, one Aho-Corasick pass instead of trying every alias at every token start, one
scan for boilerplate). What the tokenizer sees must not change by one character, so the previous
implementation lives on here, as the oracle, and both run over every posting the repository ships
(the 2025 Kaggle CSV and both 2026 stream files) and over texts built to hit the edge cases.
"""

from __future__ import annotations

import csv
import html
import re
import sys
import unicodedata
from pathlib import Path

import pytest

from shared import skills, text
from shared.casefold import SPECIAL, fold

ROOT = Path(__file__).resolve().parents[2]
POSTING_FILES = {
    "data/raw/jobs_2025_kaggle.csv": "description",
    "data/stream_2026/linkedin_jobs.csv": "job_description",
    "data/stream_2026/adzuna_jobs.csv": "job_description",
}


# --- the previous implementation (the oracle) -----------------------------------------------
class Oracle:
    SPACES = re.compile(r"[ \t\f\v\u00a0]+")
    NEWLINES = re.compile(r"\s*\n\s*")
    LAYOUT = str.maketrans("", "", "\n\t")
    BOILERPLATE = re.compile(
        r"equal (employment )?opportunit|without regard to|disabilit|veteran status|reasonable accommodation|"
        r"401\(?k\)?|paid time off|health insurance|dental|pay range|salary range|base (pay|salary)|"
        r"compensation (package|range)|e-verify|background check|privacy (notice|policy)",
        re.I,
    )
    TOKEN_START = re.compile(rf"(?<![{skills._TOKEN_CHARS}.&])[A-Za-z0-9.]")

    def __init__(self):
        self.index: dict[str, list] = {}
        for skill in skills.SKILLS:
            loose = {skill.name, *skill.aliases} - set(skill.case_sensitive)
            for alias, sensitive in [(a, False) for a in loose] + [(a, True) for a in skill.case_sensitive]:
                self.index.setdefault(alias[:2].lower(), []).append(skills._alias_rule(alias, skill, sensitive))

    def clean_text(self, value: str) -> str:
        value = unicodedata.normalize("NFKC", text.strip_html(text.repair_mojibake(value)))
        if not value.translate(self.LAYOUT).isprintable():
            value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
        value = text._EMAIL.sub(text.EMAIL_TOKEN, text._URL.sub(text.URL_TOKEN, value))
        return self.NEWLINES.sub("\n", self.SPACES.sub(" ", value)).strip()

    def alias_hits(self, value: str):
        for token in self.TOKEN_START.finditer(value):
            start = token.start()
            prefix = value[start : start + 2].lower()
            for key in {prefix, prefix[:1]}:
                for rule in self.index.get(key, ()):
                    m = rule.pattern.match(value, start)
                    if m:
                        yield rule, m

    def find_skills(self, value: str) -> list[skills.SkillMatch]:
        candidates = [
            skills.SkillMatch(r.skill.name, r.skill.category, m.group(0), m.start(), m.end())
            for r, m in self.alias_hits(value)
        ]
        kept: list[skills.SkillMatch] = []
        for match in sorted(candidates, key=lambda c: (-(c.end - c.start), c.start)):
            if all(match.end <= k.start or match.start >= k.end for k in kept):
                kept.append(match)
        return sorted(kept, key=lambda match: match.start)

    def skills_first(self, value: str) -> str:
        with_skills, without = [], []
        for line in value.split("\n"):
            if line.strip() and not self.BOILERPLATE.search(line):
                (with_skills if next(self.alias_hits(line), None) else without).append(line)
        return "\n".join(with_skills + without)


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    return Oracle()


def committed_postings() -> list[str]:
    csv.field_size_limit(sys.maxsize)
    postings = []
    for name, column in POSTING_FILES.items():
        with open(ROOT / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                value = row[column]
                if value:
                    postings.append(value)
    return postings


def test_model_input_is_unchanged_on_every_committed_posting(oracle):
    postings = committed_postings()
    assert len(postings) > 1500
    for raw in postings:
        cleaned = oracle.clean_text(raw)
        assert text.clean_text(raw) == cleaned
        assert text.skills_first(cleaned) == oracle.skills_first(cleaned)
        assert skills.find_skills(cleaned) == oracle.find_skills(cleaned)


EDGE_CASES = [
    "",
    "\n\n \t\n",
    "  leading and trailing  \n\n\n  second line\t \n",
    "tabs\tand\u00a0nbsp  and \f form feeds\v here\u2028and a line separator\u3000wide space",
    "a\u200bzero width\u00adsoft hyphen\x07bell\ufeffbom",
    "See https://example.com/jobs?id=1 or WWW.Example.com and HTTP://X.Y, mail Jobs.Team+hr@corp-1.example.co.uk",
    "DATA SCIENTIST — Python, pandas, scikit-learn; Fine-Tuning LLMs (RAG, LangChain), k8s + Docker.\n401(k), dental",
    "Experience with R&D, R, C, C++, C#, .NET, Node.js and Go-to-market; GoLang; ML Ops; ML-Ops; Spark SQL\nSpark",
    "Python\nmachine\nlearning\n\nMachine  learning\nmachine-\nlearning",
    "KUBERNETES ﬅ pıpeline aırflow PYTHON İstanbul ſcikit-learn Python3 ſql Sql",  # re.I's special cases
    "R programming\nR-programming\nR\nprogramming\nA/B testing, A/B tests; AB testing",
    "Équipe: expérience en apprentissage automatique, Python, SQL; Öl-Industrie; ℌ ℍ ℑ",
    "<p>Job</p><script>x()</script><ul><li>SQL</li><li>Tableau &amp; Looker</li></ul>",
    "Privacy Policy\nEQUAL OPPORTUNITY employer. PyTorch\nBase Salary: $1\nWithout Regard To\nAWS",
]


@pytest.mark.parametrize("raw", EDGE_CASES)
def test_model_input_is_unchanged_on_edge_cases(oracle, raw):
    cleaned = oracle.clean_text(raw)
    assert text.clean_text(raw) == cleaned
    for value in (cleaned, raw):  # skills_first and find_skills also see text that was not cleaned
        assert text.skills_first(value) == oracle.skills_first(value)
        assert skills.find_skills(value) == oracle.find_skills(value)
        assert skills.lines_mentioning_skills(value) == [bool(oracle.find_skills(x)) for x in value.split("\n")]


def test_boilerplate_phrases_are_lower_case():
    assert all(phrase == phrase.lower() for phrase in text.BOILERPLATE_PHRASES)


def test_fold_compares_like_re_ignorecase_for_every_ascii_character():
    """shared.casefold's claim, against Python's re for every Unicode character: re.IGNORECASE matches a
    character to a printable ASCII character exactly when fold() maps it to that character."""
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    folded = fold(everything)
    assert len(folded) == len(everything)
    for ascii_char in map(chr, range(0x20, 0x7F)):
        by_re = {m.start() for m in re.finditer(re.escape(ascii_char), everything, re.I)}
        by_fold = {m.start() for m in re.finditer(re.escape(ascii_char.lower()), folded)}
        assert by_re == by_fold, (ascii_char, sorted(by_re ^ by_fold)[:5])
    assert fold("İı ſ KELVIN\u212a") == "ii s kelvink"
    assert set(SPECIAL) == {"\u0130", "\u0131", "\u017f"}


def test_html_helpers_are_the_ones_the_oracle_uses():
    assert text.strip_html("<b>a</b>&amp;") == html.unescape(" a &")
