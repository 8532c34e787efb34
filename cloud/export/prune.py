"""Drop embedding rows the device can never look up, before quantization.

Two kinds of rows are provably dead in a BERT-family bundle:

* word-embedding rows of the `[unusedN]` wordpieces (994 of MiniLM's 30,522). They are ordinary
  vocabulary entries, not added tokens, and the BERT pre-tokenizer splits "[" and "]" off as
  punctuation, so no input text can ever produce them;
* position-embedding rows past the bundle's max_length: the tokenizer truncates there.

Removing them changes no output (the parity gate still runs on the result) and takes the INT8 model
under a quarter of the FP32 size, where it otherwise sits just above it: the embedding table is half
of MiniLM's parameters. The word ids move down, so the bundle's tokenizer.json is renumbered to
match, and `verify_renumbering` proves on real text that old and new tokenizers agree token for
token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from shared.errors import UserError

UNUSED_TOKEN = re.compile(r"\[unused\d+\]")


def prune_embeddings(
    fused_path: Path, tokenizer_path: Path, out_model: Path, out_tokenizer: Path, max_length: int
) -> dict[str, int] | None:
    """Write the pruned model and tokenizer; None (nothing written) when the graph has no fused
    embedding node or the tokenizer is not WordPiece, i.e. when pruning cannot be proven safe."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fused_path))
    embed = next((n for n in model.graph.node if n.op_type == "EmbedLayerNormalization"), None)
    tokenizer = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    if embed is None or tokenizer["model"].get("type") != "WordPiece":
        return None
    initializers = {i.name: i for i in model.graph.initializer}
    word, position = initializers[embed.input[2]], initializers[embed.input[3]]
    keep = _reachable_ids(tokenizer)
    word_rows = numpy_helper.to_array(word)
    position_rows = numpy_helper.to_array(position)
    if len(position_rows) < max_length:
        raise UserError(f"max_length {max_length} exceeds the model's {len(position_rows)} positions")
    word.CopyFrom(numpy_helper.from_array(word_rows[keep], word.name))
    position.CopyFrom(numpy_helper.from_array(position_rows[:max_length], position.name))
    onnx.save(model, str(out_model))

    out_tokenizer.write_text(json.dumps(_renumbered(tokenizer, keep), ensure_ascii=False), encoding="utf-8")
    return {
        "word_rows_removed": int(len(word_rows) - len(keep)),
        "position_rows_removed": int(len(position_rows) - max_length),
    }


def verify_renumbering(original: Path, pruned: Path, texts: Sequence[str], max_length: int) -> None:
    """Both tokenizers must produce the same tokens (compared through the id mapping) on `texts`."""
    from shared.text import clean_text, load_tokenizer

    old, new = load_tokenizer(original, max_length), load_tokenizer(pruned, max_length)
    for text in texts:
        cleaned = clean_text(text)
        old_tokens = [old.id_to_token(i) for i in old.encode(cleaned).ids]
        new_tokens = [new.id_to_token(i) for i in new.encode(cleaned).ids]
        if old_tokens != new_tokens:
            raise UserError("embedding pruning changed tokenization; refusing to ship the pruned bundle")


def _reachable_ids(tokenizer: dict) -> list[int]:
    added = {token["content"] for token in tokenizer.get("added_tokens", [])}
    vocab = tokenizer["model"]["vocab"]
    return sorted(i for token, i in vocab.items() if token in added or not UNUSED_TOKEN.fullmatch(token))


def _renumbered(tokenizer: dict, keep: list[int]) -> dict:
    new_id = {old: new for new, old in enumerate(keep)}
    tokenizer = json.loads(json.dumps(tokenizer))  # deep copy
    model = tokenizer["model"]
    model["vocab"] = {
        token: new_id[i] for token, i in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if i in new_id
    }
    for token in tokenizer.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    processor = tokenizer.get("post_processor") or {}
    for entry in processor.get("special_tokens", {}).values():  # TemplateProcessing
        entry["ids"] = [new_id[i] for i in entry["ids"]]
    for key in ("cls", "sep"):  # BertProcessing: [token, id]
        if key in processor:
            processor[key][1] = new_id[processor[key][1]]
    padding = tokenizer.get("padding")
    if padding:
        padding["pad_id"] = new_id[padding["pad_id"]]
    return tokenizer
