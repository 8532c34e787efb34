"""Job title -> class taxonomy: 0 = Software Engineering, 1 = Data Science, None = neither.

The rules are data: an ordered table, first match wins. Each rule carries the reason a reviewer
needs to agree or argue with it. Decisions on the contested titles (docs/pipeline.md, "The title taxonomy"):

* Data Scientist, Data/BI Analyst, Statistician, Decision/Applied/Research/ML Scientist,
  AI/ML Researcher, Quant -> Data Science: the deliverable is an analysis or a model studied
  for what it says about the data.
* ML Engineer, MLOps, AI Engineer, GenAI/LLM Engineer, Research Engineer -> Software Engineering:
  the deliverable is a production system; their postings ask for services, APIs, CI, infra.
* Data Engineer -> Software Engineering (pipelines are software). Analytics Engineer -> Data Science
  (dbt/SQL models that exist to serve analysis, and it sits in analytics teams).
* Managers, directors and leads follow the discipline they manage ("Data Science Manager" -> DS,
  "Engineering Manager, ML" -> SWE); a bare manager/strategist/consultant is None.
* Tutors, annotators, GTM/sales, strategy and policy roles are None: excluded from training and
  counted in the report, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SOFTWARE_ENGINEERING = 0
DATA_SCIENCE = 1
LABEL_NAMES = {SOFTWARE_ENGINEERING: "Software Engineering", DATA_SCIENCE: "Data Science"}


@dataclass(frozen=True)
class TitleRule:
    pattern: re.Pattern[str]
    label: int | None
    reason: str


def _rule(regex: str, label: int | None, reason: str) -> TitleRule:
    return TitleRule(re.compile(regex, re.I), label, reason)


# Order matters: exclusions first, then the DS family (so "Data Scientist Quality Engineer" is DS),
# then engineering. A title that matches nothing is None.
TITLE_RULES: tuple[TitleRule, ...] = (
    _rule(
        r"\b(tutor|annotat\w*|evaluator|ai trainer|machine trainer|labell?er)\b",
        None,
        "data-labelling / model-training gig, not an SWE or DS role",
    ),
    _rule(
        r"\b(gtm|go-to-market|sales|account (executive|manager)|recruit\w*|marketing manager)\b",
        None,
        "commercial role",
    ),
    _rule(
        r"\b(mechanical|electrical|civil|chemical|hvac|facilit\w+|construction)\b.*\bengineer",
        None,
        "physical engineering discipline",
    ),
    _rule(
        r"^(?!.*\b(data scien|data analy|engineer)).*\b(strateg\w*|governance|policy|ethic\w*)\b",
        None,
        "strategy / governance role",
    ),
    _rule(r"\banalytics engineer", DATA_SCIENCE, "analytics engineering serves analysis (dbt/SQL)"),
    _rule(
        r"\b(data scien\w*|decision scien\w*|applied scien\w*|analytics scien\w*|"
        r"(ml|machine learning|ai|research|product|clinical|health|quantitative) scientist|"
        r"scientist|statistic\w*|biostatistic\w*|econometric\w*|quant\b|quantitative analy\w*|"
        r"advanced analytics|postdoc\w*|ciencias? de (los )?datos)",
        DATA_SCIENCE,
        "science / statistics title",
    ),
    _rule(
        r"\b(data|bi|business intelligence|analytics|insights?|reporting|product|marketing|"
        r"business|fraud|risk|financial|finance|healthcare|operations|research)\b.*\banaly(st|tics)\b",
        DATA_SCIENCE,
        "data / business analyst",
    ),
    _rule(
        r"\banaly(st|tics)\b.*\b(data|sql|tableau|power ?bi|python|machine learning)\b",
        DATA_SCIENCE,
        "analyst with data tooling",
    ),
    _rule(
        r"\b(ai|ml|machine learning|deep learning)\b.*\bresearcher\b|\bresearcher\b.*\b(ai|ml|machine learning)\b",
        DATA_SCIENCE,
        "AI/ML research",
    ),
    _rule(r"\b(ml ?ops|machine learning operations)\b", SOFTWARE_ENGINEERING, "MLOps (incl. its managers)"),
    _rule(
        r"\b(tech(nical)? lead)\b.*\b(ml|machine learning|ai|gen-?ai)\b|"
        r"\b(ml|machine learning|ai|gen-?ai)\b.*\btech(nical)? lead\b",
        SOFTWARE_ENGINEERING,
        "technical lead of an ML/AI system",
    ),
    _rule(
        r"\b(software|developer|programmer|sde|swe|dev(ops|elopment) engineer|full[- ]?stack|"
        r"back[- ]?end|front[- ]?end|web|mobile|android|ios)\b",
        SOFTWARE_ENGINEERING,
        "software development title",
    ),
    _rule(
        r"\b(ml ?ops|machine learning op\w*|ai ?ops|llm ?ops|platform|infrastructure|infra|"
        r"site reliability|sre|cloud|devops|security engineer|qa|test)\b.*\b(engineer\w*|architect)\b",
        SOFTWARE_ENGINEERING,
        "platform / infrastructure / MLOps engineering",
    ),
    _rule(
        r"\b(machine learning|ml|ai|a\.i\.|artificial intelligence|gen ?ai|generative ai|llm|nlp|"
        r"computer vision|deep learning|data|research|applied)\b.*\b(engineer\w*|architect|developer)\b",
        SOFTWARE_ENGINEERING,
        "ML / AI / data engineering builds production systems",
    ),
    _rule(
        r"\b(engineer\w*|architect)\b.*\b(machine learning|ml|ai|data|llm|python)\b",
        SOFTWARE_ENGINEERING,
        "engineer working on ML / data systems",
    ),
    _rule(r"\bengineer(ing)?\b", SOFTWARE_ENGINEERING, "generic (software) engineer"),
)


def classify_title(title: str | None) -> int | None:
    """Map a job title to 0 (SWE), 1 (DS) or None (neither)."""
    rule = matching_rule(title)
    return None if rule is None else rule.label


def matching_rule(title: str | None) -> TitleRule | None:
    """The first rule that matches `title`, or None when no rule does."""
    if not title or not title.strip():
        return None
    normalized = " ".join(title.replace("/", " / ").split())
    for rule in TITLE_RULES:
        if rule.pattern.search(normalized):
            return rule
    return None


def label_name(label: int) -> str:
    return LABEL_NAMES[label]
