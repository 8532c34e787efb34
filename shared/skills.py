"""Skills taxonomy: what a job posting asks for, found by alias in its text.

One table, shared by the device (career advice, driving-term explanations) and the cloud (keyword
drift, "where A fails and B succeeds on new tech"). Each skill has a canonical name, a category and
the spellings it goes by in postings. Matching is deterministic and explainable: every match carries
the alias that fired and its character span, so a UI can highlight it and a reviewer can argue with it.

Matching rules:
* case-insensitive, except aliases listed as case-sensitive: short or ordinary words that are only a
  skill when capitalised the way the skill spells it ("R", "Go", "Rust", "RAG", "Mojo", "Spark"...);
* an alias matches only as a whole token: the characters around it must not be letters, digits,
  "_", "+" or "#" (so "SQL" does not fire inside "PostgreSQL", nor "C" inside "C++");
* overlapping matches resolve to the longest one ("Azure Machine Learning" beats "Machine Learning").

This table is also part of the model input: `shared.text.skills_first` (Model A's preprocessing)
moves the lines that mention skills to the front. Changing an alias changes what the model reads, so
retrain and re-export after editing it, and regenerate `shared/skill_baseline_2025.json`
(`python scripts/build_skill_baseline.py`; a test fails while it is stale).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from shared.casefold import fold

LANGUAGES = "languages"
FRAMEWORKS = "frameworks"
ML = "ml"
DATA = "data"
CLOUD = "cloud"
MLOPS = "mlops"
GENAI = "genai"
CATEGORIES = (LANGUAGES, FRAMEWORKS, ML, DATA, CLOUD, MLOPS, GENAI)


@dataclass(frozen=True)
class Skill:
    name: str
    category: str
    aliases: tuple[str, ...]  # case-insensitive spellings (the name is added)
    case_sensitive: tuple[str, ...] = ()  # spellings that only count with this exact case


@dataclass(frozen=True)
class SkillMatch:
    name: str
    category: str
    alias: str  # the text as it appears in the posting
    start: int
    end: int


def _skill(name: str, category: str, *aliases: str, exact: tuple[str, ...] = ()) -> Skill:
    return Skill(name, category, tuple(aliases), exact)


SKILLS: tuple[Skill, ...] = (
    # --- languages -------------------------------------------------------------------------
    _skill("Python", LANGUAGES, "python3"),
    _skill("R", LANGUAGES, "RStudio", "R programming", "R language", exact=("R",)),
    _skill("SQL", LANGUAGES, "T-SQL", "PL/SQL", "SparkSQL", "Spark SQL"),
    _skill("Java", LANGUAGES, exact=("JAVA",)),
    _skill("Scala", LANGUAGES),
    _skill("Go", LANGUAGES, "Golang", exact=("Go",)),
    _skill("Rust", LANGUAGES, exact=("Rust",)),
    _skill("C++", LANGUAGES, "cpp"),
    _skill("C#", LANGUAGES, ".NET", "dotnet"),
    _skill("C", LANGUAGES, exact=("C",)),
    _skill("JavaScript", LANGUAGES, "JS", "ECMAScript"),
    _skill("TypeScript", LANGUAGES),
    _skill("Julia", LANGUAGES, exact=("Julia",)),
    _skill("MATLAB", LANGUAGES),
    _skill("SAS", LANGUAGES, exact=("SAS",)),
    _skill("Bash", LANGUAGES, "shell scripting"),
    _skill("Kotlin", LANGUAGES),
    _skill("Swift", LANGUAGES, exact=("Swift",)),
    _skill("CUDA", LANGUAGES),
    _skill("Mojo", LANGUAGES, exact=("Mojo",)),
    # --- frameworks (application + ML libraries) --------------------------------------------
    _skill("PyTorch", FRAMEWORKS, "torch"),
    _skill("TensorFlow", FRAMEWORKS, "tf.keras"),
    _skill("Keras", FRAMEWORKS),
    _skill("JAX", FRAMEWORKS, exact=("JAX",)),
    _skill("scikit-learn", FRAMEWORKS, "sklearn", "scikit learn", "scikit"),
    _skill("XGBoost", FRAMEWORKS, "LightGBM", "CatBoost"),
    _skill("pandas", FRAMEWORKS),
    _skill("NumPy", FRAMEWORKS),
    _skill("SciPy", FRAMEWORKS),
    _skill("Hugging Face", FRAMEWORKS, "HuggingFace", "Hugging Face Transformers", "transformers library"),
    _skill("spaCy", FRAMEWORKS),
    _skill("OpenCV", FRAMEWORKS),
    _skill("React", FRAMEWORKS, "React.js", "ReactJS", "React Native"),
    _skill("Node.js", FRAMEWORKS, "NodeJS", exact=("Node",)),
    _skill("Django", FRAMEWORKS),
    _skill("Flask", FRAMEWORKS, exact=("Flask",)),
    _skill("FastAPI", FRAMEWORKS),
    _skill("Spring Boot", FRAMEWORKS, "Spring Framework", "Spring MVC"),
    _skill("GraphQL", FRAMEWORKS),
    _skill("REST APIs", FRAMEWORKS, "REST API", "RESTful", "RESTful APIs", exact=("REST",)),
    # --- machine learning / statistics methods ---------------------------------------------
    _skill("Machine Learning", ML, "ML"),
    _skill("Deep Learning", ML, "neural networks", "neural network"),
    _skill("NLP", ML, "natural language processing"),
    _skill("Computer Vision", ML),
    _skill(
        "Statistics", ML, "statistical analysis", "statistical modeling", "statistical modelling", "statistical methods"
    ),
    _skill("A/B Testing", ML, "A/B tests", "AB testing", "experimentation", "experimental design"),
    _skill("Causal Inference", ML),
    _skill("Time Series", ML, "forecasting"),
    _skill("Recommender Systems", ML, "recommendation systems", "recommender system", "recommendation engines"),
    _skill("Reinforcement Learning", ML, "RLHF"),
    _skill("Bayesian Methods", ML, "Bayesian"),
    _skill("Predictive Modeling", ML, "predictive modelling", "predictive models"),
    # --- data engineering and analytics tools -----------------------------------------------
    _skill("Apache Spark", DATA, "PySpark", exact=("Spark",)),
    _skill("Hadoop", DATA, "Hive", "HDFS"),
    _skill("Kafka", DATA),
    _skill("Airflow", DATA),
    _skill("dbt", DATA, exact=("dbt", "DBT")),
    _skill("Snowflake", DATA),
    _skill("Databricks", DATA),
    _skill("BigQuery", DATA),
    _skill("Redshift", DATA),
    _skill("PostgreSQL", DATA, "Postgres"),
    _skill("MySQL", DATA),
    _skill("MongoDB", DATA),
    _skill("NoSQL", DATA),
    _skill("ETL", DATA, "ELT", "data pipelines", "data pipeline"),
    _skill("Tableau", DATA),
    _skill("Power BI", DATA, "PowerBI"),
    _skill("Looker", DATA),
    _skill("Excel", DATA, "MS Excel", "Microsoft Excel", exact=("Excel",)),
    _skill("Data Visualization", DATA, "data visualisation", "dashboards", "dashboarding"),
    # --- cloud and infrastructure ------------------------------------------------------------
    _skill("AWS", CLOUD, "Amazon Web Services", "EC2", "S3", "Lambda"),
    _skill("Azure", CLOUD, "Microsoft Azure"),
    _skill("GCP", CLOUD, "Google Cloud", "Google Cloud Platform"),
    _skill("SageMaker", CLOUD, "Amazon SageMaker"),
    _skill("Vertex AI", CLOUD),
    _skill("Azure ML", CLOUD, "Azure Machine Learning"),
    _skill("Docker", CLOUD, "containers", "containerization"),
    _skill("Kubernetes", CLOUD, "k8s", "EKS", "GKE", "AKS"),
    _skill("Terraform", CLOUD, "infrastructure as code", "IaC"),
    _skill("Linux", CLOUD, "Unix"),
    _skill("Microservices", CLOUD, "microservice"),
    _skill("Distributed Systems", CLOUD, "distributed computing"),
    # --- MLOps ---------------------------------------------------------------------------
    _skill("MLOps", MLOPS, "ML Ops", "ML operations", "machine learning operations"),
    _skill(
        "CI/CD",
        MLOPS,
        "continuous integration",
        "continuous delivery",
        "continuous deployment",
        "GitHub Actions",
        "Jenkins",
    ),
    _skill("Git", MLOPS, "GitHub", "GitLab"),
    _skill("MLflow", MLOPS),
    _skill("Kubeflow", MLOPS),
    _skill("Weights & Biases", MLOPS, "wandb", "W&B"),
    _skill("DVC", MLOPS, exact=("DVC",)),
    _skill("Model Monitoring", MLOPS, "model drift", "data drift", "drift detection"),
    _skill("Model Deployment", MLOPS, "model serving", "deploying models", "deploy models", "productionizing models"),
    _skill("ONNX", MLOPS, "ONNX Runtime"),
    _skill("Feature Store", MLOPS, "feature stores", "Feast"),
    # --- generative AI -------------------------------------------------------------------
    _skill("LLM", GENAI, "LLMs", "large language model", "large language models"),
    _skill("Generative AI", GENAI, "GenAI", "Gen AI", "generative models"),
    _skill("LangChain", GENAI),
    _skill("LangGraph", GENAI),
    _skill("LlamaIndex", GENAI, "Llama Index"),
    _skill("RAG", GENAI, "retrieval-augmented generation", "retrieval augmented generation", exact=("RAG",)),
    _skill("Agentic AI", GENAI, "AI agents", "AI agent", "agentic", "multi-agent", "autonomous agents"),
    _skill("MCP", GENAI, "Model Context Protocol", exact=("MCP",)),
    _skill("Prompt Engineering", GENAI, "prompt design", "prompting"),
    _skill("Fine-tuning", GENAI, "fine tuning", "finetuning", "LoRA", "PEFT"),
    _skill(
        "Vector Databases",
        GENAI,
        "vector database",
        "vector DB",
        "vector store",
        "Pinecone",
        "FAISS",
        "Weaviate",
        "Chroma",
        "pgvector",
    ),
    _skill("Embeddings", GENAI, "embedding models", "text embeddings"),
    _skill("Transformers", GENAI, "transformer models", "transformer architecture", "BERT", "attention mechanism"),
    _skill("Mamba", GENAI, "state space models", "state-space models", "SSM", exact=("Mamba",)),
    _skill("OpenAI API", GENAI, "OpenAI", "GPT-4", "GPT", "ChatGPT"),
    _skill("Claude", GENAI, "Anthropic", exact=("Claude",)),
    _skill("Llama", GENAI, "Llama 2", "Llama 3", exact=("Llama", "LLaMA")),
    _skill("Diffusion Models", GENAI, "Stable Diffusion", "diffusion model"),
)

SKILLS_BY_NAME: dict[str, Skill] = {skill.name: skill for skill in SKILLS}

# A token is a run of these; an alias must not touch one on its left. On its right, "&" also
# blocks ("R&D", "P&L" are not the R language), and so does "-letter" ("Go-to-market").
_TOKEN_CHARS = r"A-Za-z0-9_+#"
# A token starts with one of these, and not right after one of these (or ".", "&"):
_TOKEN_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
_NOT_BEFORE_TOKEN = _TOKEN_FIRST | frozenset("_+#&")
_KEY_LENGTH = 2


@dataclass(frozen=True)
class _AliasRule:
    pattern: re.Pattern[str]
    skill: Skill
    key: str  # the alias' first _KEY_LENGTH characters, lower-cased: a token must start with them


def _alias_rule(alias: str, skill: Skill, case_sensitive: bool) -> _AliasRule:
    body = re.escape(alias).replace(r"\ ", r"[\s\-]+")  # "fine tuning" also matches "fine-tuning"
    flags = 0 if case_sensitive else re.I
    return _AliasRule(re.compile(rf"{body}(?![{_TOKEN_CHARS}&]|-[A-Za-z])", flags), skill, alias[:_KEY_LENGTH].lower())


class _AliasMatcher:
    """Every alias rule, found in one pass of an Aho-Corasick automaton over the case-folded text.

    The automaton holds each alias' first word, lower-cased (`shared.casefold`: the same comparison as
    the rules' `re.IGNORECASE`): a rule can only match where its first word appears, so those are the
    candidates. Each is then held to exactly what trying every rule at every token start did: it must
    be a token start, the token's first characters must be the rule's key, and the rule's regex must
    match there. Same matches, a fraction of a millisecond per posting instead of a Python step per token.
    """

    def __init__(self):
        import ahocorasick_rs  # Rust extension, wheels for x86-64 and aarch64

        self.by_word: dict[str, list[_AliasRule]] = {}
        for skill in SKILLS:
            loose = sorted({skill.name, *skill.aliases} - set(skill.case_sensitive))
            for alias, case_sensitive in [(a, False) for a in loose] + [(a, True) for a in skill.case_sensitive]:
                word = alias.split(" ")[0].lower()
                self.by_word.setdefault(word, []).append(_alias_rule(alias, skill, case_sensitive))
        # One-letter first words ("R", "C") would make the automaton report every r and c of a posting;
        # a regex finds them instead, as tokens of one letter (what every rule starting with them needs).
        letters = "".join(sorted(w + w.upper() for w in self.by_word if len(w) == 1))
        self.letter_tokens = re.compile(rf"[{letters}](?<![{_TOKEN_CHARS}.&][{letters}])(?![{_TOKEN_CHARS}&])")
        self.words = [word for word in self.by_word if len(word) > 1]
        self.automaton = ahocorasick_rs.AhoCorasick(self.words)

    def hits(
        self, text: str, line_ends: list[int] | None = None, folded: str | None = None
    ) -> Iterator[tuple[int, _AliasRule, re.Match]]:
        """(line, rule, match) for every rule matching at a token start of `text`, in reading order (overlaps
        included). With `line_ends` (the offsets of the text's line breaks, then its length) each match is
        kept inside its line, as if the line were the whole text, and `line` is its index; else 0."""
        ends = line_ends or [len(text)]
        candidates = [
            (start, self.words[index])
            for index, start, _ in self.automaton.find_matches_as_indexes(
                fold(text) if folded is None else folded, overlapping=True
            )
        ]
        candidates += [(m.start(), m.group(0).lower()) for m in self.letter_tokens.finditer(text)]
        found = []
        for start, word in candidates:
            if text[start] not in _TOKEN_FIRST or (start and text[start - 1] in _NOT_BEFORE_TOKEN):
                continue
            line = bisect.bisect_left(ends, start) if line_ends else 0
            prefix = text[start : start + _KEY_LENGTH].lower()
            for rule in self.by_word[word]:
                if rule.key in (prefix, prefix[:1]):
                    m = rule.pattern.match(text, start, ends[line])
                    if m:
                        found.append((start, line, rule, m))
        found.sort(key=lambda hit: hit[0])
        return ((line, rule, m) for _, line, rule, m in found)


@lru_cache(maxsize=1)
def _matcher() -> _AliasMatcher:
    return _AliasMatcher()


def _alias_hits(text: str) -> Iterator[tuple[_AliasRule, re.Match]]:
    """Every alias rule matching at a token start of `text`, in reading order (overlaps included)."""
    return ((rule, m) for _, rule, m in _matcher().hits(text))


def find_skills(text: str) -> list[SkillMatch]:
    """Every skill mention in `text`, in reading order, overlaps resolved to the longest match."""
    candidates = [
        SkillMatch(rule.skill.name, rule.skill.category, m.group(0), m.start(), m.end())
        for rule, m in _alias_hits(text)
    ]
    kept: list[SkillMatch] = []
    for match in sorted(candidates, key=lambda c: (-(c.end - c.start), c.start)):
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    return sorted(kept, key=lambda match: match.start)


def mentions_skill(text: str) -> bool:
    """Whether `find_skills(text)` would find anything.

    Any match survives `find_skills`' overlap resolution (the longest one is always kept), so one
    hit decides.
    """
    return next(_alias_hits(text), None) is not None


def lines_mentioning_skills(text: str, folded: str | None = None) -> list[bool]:
    """For each line of `text.split("\n")`, whether `mentions_skill(line)`, in one pass over the whole text
    (`shared.text.skills_first` asks this of every posting, with `fold(text)` it has already made)."""
    lines = text.split("\n")
    ends = [end - 1 for end in itertools.accumulate(len(line) + 1 for line in lines)]  # line breaks, then len
    flags = [False] * len(lines)
    for line, _, _ in _matcher().hits(text, ends, folded):
        flags[line] = True
    return flags


def skill_names(text: str) -> list[str]:
    """Distinct canonical skill names mentioned in `text`, in order of first mention."""
    return list(dict.fromkeys(match.name for match in find_skills(text)))


def canonical_skill(name: str) -> str | None:
    """Map a user-typed skill ("pytorch", "k8s", "Gen AI") to its canonical name, or None."""
    name = name.strip()
    if not name:
        return None
    if name in SKILLS_BY_NAME:
        return name
    matches = find_skills(name)
    # Only a match that covers the whole input counts: "golang dev" is not a skill name.
    if len(matches) == 1 and matches[0].start == 0 and matches[0].end == len(name):
        return matches[0].name
    lowered = name.lower()
    for skill in SKILLS:
        if lowered == skill.name.lower() or lowered in (a.lower() for a in skill.case_sensitive):
            return skill.name
    return None
