"""The host half of the Hailo path: what runs on the Pi's CPU around a compiled encoder (HEF).

The Hailo Dataflow Compiler compiles a BERT-family encoder from two tensors to its last hidden state;
token ids never reach the chip. The model zoo cuts MiniLM-L6 exactly there
(`hailo_model_zoo/cfg/base/all_minilm.yaml`: nodes `embedding` + `masked_fill` -> `last_hidden_state`,
128 tokens; its calibration records hold the word-embedding rows of each token and the 0/1 attention
mask). So, per posting window of `sequence_length` word pieces, the host:

1. looks up the word-embedding rows of the token ids (`embedding`, shape [L, hidden]); the position
   and token-type embeddings and the embedding LayerNorm are constants folded into the HEF;
2. expands the 0/1 attention mask to one row per query position and head (`masked_fill`,
   [L, heads * L], head-major: the layout the HEF's softmax mask input takes);
3. after the HEF: pools the last hidden state (mean over real tokens, or BERT's [CLS] pooler) and
   applies the classification head.

Weights come from `hailo_host.npz` in the bundle (written by `careeredge-cloud export --target hailo`
or the frozen-encoder head stage), and the manifest's `hailo` block says how to use them. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.bundle import BundleError

HOST_WEIGHTS_FILE = "hailo_host.npz"
POOLINGS = ("mean", "cls_pooler")


@dataclass(frozen=True)
class EncoderCut:
    """The manifest's `hailo` block: the compiled encoder's interface and the host's part."""

    sequence_length: int
    hidden_size: int
    num_heads: int
    pooling: str
    embedding_input: str = "embedding"
    mask_input: str = "masked_fill"
    output: str = "last_hidden_state"

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> EncoderCut:
        block = manifest.get("hailo")
        if not isinstance(block, dict):
            raise BundleError(f"bundle {manifest.get('name')} has no 'hailo' block: it was not exported for Hailo")
        try:
            cut = cls(**block)
        except TypeError as exc:
            raise BundleError(f"bundle manifest 'hailo' block: {exc}") from None
        if cut.pooling not in POOLINGS:
            raise BundleError(f"bundle manifest 'hailo' block: pooling must be one of {', '.join(POOLINGS)}")
        return cut

    def to_manifest(self) -> dict[str, Any]:
        return dict(self.__dict__)


class HostSide:
    """Embeddings and mask in, class scores out, around the encoder."""

    def __init__(self, cut: EncoderCut, weights: dict[str, np.ndarray]):
        self.cut = cut
        required = ["word_embeddings", "classifier_weight", "classifier_bias"]
        if cut.pooling == "cls_pooler":
            required += ["pooler_weight", "pooler_bias"]
        missing = [name for name in required if name not in weights]
        if missing:
            raise BundleError(f"{HOST_WEIGHTS_FILE} lacks {', '.join(missing)}")
        self.weights = {name: np.asarray(weights[name], dtype=np.float32) for name in required}
        if self.weights["word_embeddings"].shape[1] != cut.hidden_size:
            raise BundleError(f"{HOST_WEIGHTS_FILE}: word embeddings are not {cut.hidden_size} wide")

    @classmethod
    def load(cls, bundle_dir: Path, manifest: dict[str, Any]) -> HostSide:
        path = Path(bundle_dir) / HOST_WEIGHTS_FILE
        if HOST_WEIGHTS_FILE not in manifest["files"] or not path.is_file():
            raise BundleError(f"bundle {bundle_dir} has no {HOST_WEIGHTS_FILE} (the host half of the Hailo path)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                weights = {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read {path}: {exc}") from None
        return cls(EncoderCut.from_manifest(manifest), weights)

    # --- before the HEF --------------------------------------------------------------------------------
    def fixed_length(self, ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad (with [PAD] = 0 and mask 0) or cut each row to the compiled sequence length."""
        length = self.cut.sequence_length
        ids, attention_mask = ids[:, :length], attention_mask[:, :length]
        pad = ((0, 0), (0, length - ids.shape[1]))
        return np.pad(ids, pad), np.pad(attention_mask, pad)

    def embeddings(self, input_ids: np.ndarray) -> np.ndarray:
        """[batch, L] token ids -> [batch, L, hidden] word-embedding rows (the `embedding` input)."""
        return self.weights["word_embeddings"][input_ids]

    def mask(self, attention_mask: np.ndarray) -> np.ndarray:
        """[batch, L] 0/1 -> [batch, L, heads * L]: row q, block h holds which keys query q may attend."""
        batch, length = attention_mask.shape
        keys = attention_mask.astype(np.float32)[:, None, None, :]
        return np.broadcast_to(keys, (batch, length, self.cut.num_heads, length)).reshape(batch, length, -1)

    # --- after the HEF ---------------------------------------------------------------------------------
    def pool(self, hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self.cut.pooling == "mean":
            weights = attention_mask.astype(np.float32)[:, :, None]
            return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        first = hidden[:, 0, :]
        return np.tanh(first @ self.weights["pooler_weight"].T + self.weights["pooler_bias"])

    def head(self, pooled: np.ndarray) -> np.ndarray:
        return pooled @ self.weights["classifier_weight"].T + self.weights["classifier_bias"]

    def logits(self, hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.head(self.pool(hidden, attention_mask))
