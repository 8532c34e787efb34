"""shared.text: the cleaning that training and serving both run."""

from __future__ import annotations

from shared.stopwords import STOP_WORDS
from shared.text import clean_text, model_input, remove_stop_words, repair_mojibake, words


def test_html_entities_urls_emails_and_whitespace():
    raw = (
        "<div><p>Build&nbsp;<b>RAG</b> pipelines &amp; agents</p><script>alert(1)</script>"
        "Apply at https://jobs.example.com/x?id=1 or hr@example.com</div>\n\n\n  ok"
    )
    cleaned = clean_text(raw)
    assert "<" not in cleaned and "alert" not in cleaned
    assert "Build RAG pipelines & agents" in cleaned
    assert "[url]" in cleaned and "[email]" in cleaned and "example.com" not in cleaned
    assert "\n\n" not in cleaned and cleaned.endswith("ok")


def test_unicode_normalised_and_control_characters_dropped():
    assert clean_text("ﬁne-tune\u200b models\x07") == "fine-tune models"
    # Layout is kept, and the printable fast path must not let a format or private-use character through.
    assert clean_text("a\tb\nc\ufeffd\ue000e") == "a b\ncde"


def test_mojibake_from_the_2025_csv_is_repaired():
    assert (
        repair_mojibake("Software Engineer, Machine Learning â€“ Systems")
        == "Software Engineer, Machine Learning – Systems"
    )
    assert repair_mojibake("plain text") == "plain text"


def test_stop_words_removed_but_technical_tokens_kept():
    assert (
        remove_stop_words("We are looking for a C++ and node.js engineer with the PyTorch skills")
        == "looking c++ node.js engineer pytorch skills"
    )
    assert words("C# / .NET") == ["c#", "net"]


def test_builtin_stop_words_equal_scikit_learns():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    assert STOP_WORDS == ENGLISH_STOP_WORDS


def test_model_input_styles_are_deterministic():
    text = "<p>The Data Scientist will build models</p>"
    assert model_input(text, "clean") == "The Data Scientist will build models"
    assert model_input(text, "clean_no_stopwords") == "data scientist build models"


def test_skills_first_moves_requirement_lines_into_the_window_and_drops_boilerplate():
    posting = (
        "About Acme: we are a family of innovators since 1990.\n"
        "You will build pipelines in Python and Spark.\n"
        "We offer dental, 401(k) and paid time off.\n"
        "Our culture values curiosity.\n"
        "Experience with PyTorch is a plus.\n"
        "Acme is an equal opportunity employer."
    )
    assert model_input(posting, "skills_first").split("\n") == [
        "You will build pipelines in Python and Spark.",
        "Experience with PyTorch is a plus.",
        "About Acme: we are a family of innovators since 1990.",
        "Our culture values curiosity.",
    ]


def test_unknown_preprocessing_style_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="unknown preprocessing"):
        model_input("text", "lowercase_everything")
