"""The skills taxonomy finds what postings ask for, by alias, as whole tokens, with spans."""

from __future__ import annotations

from cloud.data.kaggle import read_kaggle_csv
from shared.skills import CATEGORIES, SKILLS, canonical_skill, find_skills, mentions_skill, skill_names
from shared.text import clean_text


def test_genai_terms_are_found_with_their_spans():
    text = "Build agentic AI with LangChain and RAG over an MCP server; Mojo and Mamba a plus."
    matches = find_skills(text)
    assert [m.name for m in matches] == ["Agentic AI", "LangChain", "RAG", "MCP", "Mojo", "Mamba"]
    for match in matches:
        assert text[match.start : match.end] == match.alias
    assert {m.category for m in matches} >= {"genai", "languages"}


def test_aliases_map_to_one_canonical_skill():
    assert skill_names("k8s, Kubernetes and EKS") == ["Kubernetes"]
    assert skill_names("fine-tuning LLMs with LoRA") == ["Fine-tuning", "LLM"]
    assert skill_names("Retrieval-Augmented Generation") == ["RAG"]


def test_whole_tokens_only():
    assert "SQL" not in skill_names("PostgreSQL and MySQL")
    assert "C" not in skill_names("C++ and C# developers")
    assert "R" not in skill_names("our R&D lab in Washington, D.C.")
    assert "JavaScript" not in skill_names("dashboards in Vue.js and D3.js")
    assert "Go" not in skill_names("our Go-to-market team")
    assert skill_names("Python, R, SQL") == ["Python", "R", "SQL"]


def test_case_sensitive_aliases_ignore_ordinary_words():
    assert skill_names("we rag on bad code and go home to rest, we excel") == []
    assert skill_names("Excel and REST APIs in Go") == ["Excel", "REST APIs", "Go"]


def test_longest_overlapping_match_wins():
    assert skill_names("Azure Machine Learning") == ["Azure ML"]


def test_canonical_skill_for_user_input():
    assert canonical_skill("pytorch") == "PyTorch"
    assert canonical_skill("Gen AI") == "Generative AI"
    assert canonical_skill("go") == "Go"
    assert canonical_skill("golang developer") is None
    assert canonical_skill("underwater basket weaving") is None


def test_table_is_consistent():
    names = [skill.name for skill in SKILLS]
    assert len(names) == len(set(names))
    assert all(skill.category in CATEGORIES for skill in SKILLS)
    for required in ("LangChain", "RAG", "Agentic AI", "MCP", "Mojo", "Mamba", "LLM", "MLOps", "AWS"):
        assert required in names


def test_mentions_skill_agrees_with_find_skills_on_every_2025_line(kaggle_csv):
    # skills_first asks the short-circuiting check for every line; it must decide like find_skills.
    lines = [line for posting in read_kaggle_csv(kaggle_csv) for line in clean_text(posting.description).split("\n")]
    assert sum(map(mentions_skill, lines)) > 1000  # the 2025 postings are full of skill lines
    for line in lines:
        assert mentions_skill(line) == bool(find_skills(line)), line
