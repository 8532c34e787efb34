"""TF-IDF + logistic regression: the cheap baseline every transformer number is compared with."""

from __future__ import annotations

import numpy as np

from shared.text import remove_stop_words


def fit_tfidf_baseline(train_texts: list[str], train_labels: list[int], c: float = 4.0):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(
        TfidfVectorizer(preprocessor=remove_stop_words, ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=c, max_iter=2000, class_weight="balanced"),
    )
    return pipeline.fit(train_texts, train_labels)


def tfidf_probabilities(pipeline, texts: list[str]) -> np.ndarray:
    return pipeline.predict_proba(texts)


def fit_predict_window(train_texts: list[str], train_labels, test_texts: list[str], cut: int = 0) -> np.ndarray:
    """The diagnostics' learner (scripts/study_text_window.py, study_ceiling.py): TF-IDF + logistic regression
    on texts cut at `cut` characters (0 = whole). Unlike `fit_tfidf_baseline` (Model A's comparison) it keeps
    stop words and is barely regularised: it asks what the text can carry, not what a baseline scores."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    trim = (lambda t: t[:cut]) if cut else (lambda t: t)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    features = vectorizer.fit_transform([trim(t) for t in train_texts])
    model = LogisticRegression(C=10, max_iter=3000).fit(features, train_labels)
    return model.predict(vectorizer.transform([trim(t) for t in test_texts]))
