"""How a model reads a posting that is longer than its window.

A posting is ~1,100 word pieces after `shared.text.model_input`; the encoder reads `max_length` (256).
A model with `windows = k` reads the first k consecutive windows of the posting, each one
`[CLS] + (max_length - 2) pieces + [SEP]` with no overlap, and the posting's logits are the mean of
its windows' logits. A posting shorter than one window is read exactly as with `windows = 1`.

Why: most 2026 postings are longer than one window, and a model trained on first windows (A and B are)
might decide better reading more. The network and the weights are unchanged: only how many windows it is
run on, recorded as `windows` in the train log and the bundle manifest. Trainer, export and device all
read through this module, so they cut the same windows. Measured for Model B
(docs/studies/2026-11-27-reading-windows.md): three windows won on the 2026 evaluation split but tied on the data B's settings are chosen on, at
2.9x the cost per posting, so B ships reading one (`train_b.windows: 1`).

Light: the tokenizers wheel's `Encoding` objects and numpy (imported where used, so that the
stdlib-only `shared.bundle` can validate `windows` with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def check_windows(windows) -> int:
    """`windows` as a positive int, or ValueError (the manifest and params.yaml are user input)."""
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ValueError(f"windows must be a positive integer, got {windows!r}")
    return windows


def posting_windows(encoding, windows: int) -> list:
    """The first `windows` windows of one posting: the encoding and its overflow, in text order.

    The tokenizer must truncate at max_length with stride 0 (`shared.text.load_tokenizer`), which makes
    the overflow the next windows, each already framed by [CLS] ... [SEP]."""
    return [encoding, *encoding.overflowing][: check_windows(windows)]


def window_encodings(encodings: Sequence, windows: int) -> tuple[list, np.ndarray]:
    """Every posting's windows, flattened, and for each window the index of its posting."""
    import numpy as np

    flat, owners = [], []
    for index, encoding in enumerate(encodings):
        for window in posting_windows(encoding, windows):
            flat.append(window)
            owners.append(index)
    return flat, np.asarray(owners, dtype=np.int64)


def window_ids(encoding) -> tuple[int, ...]:
    """A window's token ids without padding (a hashable key for caches)."""
    length = sum(encoding.attention_mask)
    return tuple(encoding.ids[:length])


def average_windows(window_logits: np.ndarray, owners: np.ndarray, postings: int) -> np.ndarray:
    """Per-posting mean of the window logits: shape (postings, labels), float64."""
    import numpy as np

    window_logits = np.asarray(window_logits, dtype=np.float64)
    owners = np.asarray(owners, dtype=np.int64)
    counts = np.bincount(owners, minlength=postings)
    if (counts == 0).any():
        raise ValueError("every posting needs at least one window")
    totals = np.zeros((postings, window_logits.shape[1]), dtype=np.float64)
    np.add.at(totals, owners, window_logits)
    return totals / counts[:, None]
