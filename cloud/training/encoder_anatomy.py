"""Where a transformer classifier keeps its encoder blocks, and the surgery training does on them.

Fine-tuning freezes the lowest blocks, distillation keeps a chosen few of a teacher's blocks and the
frozen-bottom cache swaps blocks in and out of the live model. All of them need to find the block list
the same way for BERT/MiniLM (`encoder.layer`) and DistilBERT (`transformer.layer`), so that lives here
and nowhere else.
"""

from __future__ import annotations

import copy

from shared.errors import UserError


def encoder_layers(model):
    """The encoder's ModuleList of transformer blocks (BERT/MiniLM: encoder.layer, DistilBERT: transformer.layer)."""
    base = model.base_model
    for container in ("encoder", "transformer"):
        layers = getattr(getattr(base, container, None), "layer", None)
        if layers is not None:
            return layers
    raise ValueError(f"cannot find the encoder layers of {type(model).__name__}")


def freeze_lower_layers(model, embeddings: bool, layers: int) -> None:
    """Freeze the embeddings and the lowest `layers` blocks. With ~430 rows the upper layers and the head
    carry the task; skipping the lower layers' backward pass roughly halves a CPU epoch."""
    frozen = list(model.base_model.embeddings.parameters()) if embeddings else []
    for block in list(encoder_layers(model))[:layers]:
        frozen += list(block.parameters())
    for parameter in frozen:
        parameter.requires_grad_(False)


def shallow_copy(teacher_model, layers: tuple[int, ...]):
    """A copy of `teacher_model` keeping only the encoder blocks `layers` (in order), with everything
    else (embeddings, pooler, head) as the teacher has it."""
    import torch

    blocks = encoder_layers(teacher_model)
    if not layers or list(layers) != sorted(set(layers)) or not all(0 <= i < len(blocks) for i in layers):
        raise UserError(f"distill.layers must be increasing block indices in 0..{len(blocks) - 1}, got {list(layers)}")
    student = copy.deepcopy(teacher_model)
    kept = torch.nn.ModuleList([copy.deepcopy(blocks[i]) for i in layers])
    container = student.base_model.encoder if hasattr(student.base_model, "encoder") else student.base_model.transformer
    container.layer = kept
    for position, block in enumerate(kept):  # newer transformers index blocks for their KV cache
        attention = getattr(getattr(block, "attention", None), "self", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position
    attribute = "num_hidden_layers" if hasattr(student.config, "num_hidden_layers") else "n_layers"
    setattr(student.config, attribute, len(layers))
    return student
