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
