"""Exact parameter and FLOP counts for the decoder-only transformer in ``model.py``.

Torch-free on purpose: planning and sweep code size models without the ``train`` extra.

The model (see ``model.py``): token embedding, ``n_layers`` blocks of
[RMSNorm -> causal self-attention (Wq, Wk, Wv, Wo, each d x d, RoPE, no biases)
 -> RMSNorm -> SwiGLU MLP (W_gate, W_up: d -> ffn_hidden, W_down: ffn_hidden -> d)],
a final RMSNorm, and an output head (vocab x d), untied unless ``tie_embeddings``.

Parameter convention (Kaplan et al. 2020 style, used for ``params`` everywhere in scalinglab):

    non_embedding = n_layers * (4 d^2 + 3 d ffn_hidden + 2 d) + d        (final norm included)
    embedding     = vocab d  (input table)  + vocab d (output head, only if untied)
    total         = non_embedding + embedding

i.e. ``non_embedding`` excludes BOTH the input embedding and the output head. RoPE has no
parameters. Chinchilla counts the head in N; use ``total`` (or ``non_embedding + vocab*d``)
for that convention: ``ParamCount.with_head`` gives it directly.

FLOPs per token of training (``training_flops_per_token``), context length T = context_length:

    forward  = 2 * (matmul weights: n_layers (4 d^2 + 3 d ffn_hidden) + vocab d)   (LM head included)
             + 2 * 2 * n_layers * T * d        (attention scores QK^T and the weighted sum AV)
    training = 3 * forward                     (backward = 2x forward)

The attention term is NOT halved for the causal mask (the Chinchilla, Hoffmann et al. 2022
App. F, convention: it counts what a dense kernel would do); norms, softmax, RoPE and the
embedding lookup (no multiply-adds) are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelShape", "ParamCount", "count_params", "training_flops_per_token",
           "forward_flops_per_token"]


@dataclass(frozen=True)
class ModelShape:
    n_layers: int
    d_model: int
    n_heads: int
    ffn_hidden: int
    vocab_size: int
    context_length: int
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("n_layers", "d_model", "n_heads", "ffn_hidden", "vocab_size", "context_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelShape.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"ModelShape.d_model ({self.d_model}) must be divisible by "
                             f"n_heads ({self.n_heads})")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"ModelShape head_dim = d_model/n_heads = {self.d_model // self.n_heads} "
                             "must be even (RoPE rotates pairs of channels)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


@dataclass(frozen=True)
class ParamCount:
    non_embedding: int   # blocks + final norm; excludes input embedding and output head
    embedding: int       # input embedding + output head (when untied)
    total: int
    head: int = 0        # output-head parameters counted inside ``embedding`` (0 when tied)

    @property
    def with_head(self) -> int:
        """Non-embedding parameters plus the output head (the Chinchilla-style N)."""
        return self.non_embedding + self.head


def count_params(shape: ModelShape) -> ParamCount:
    d, f, L, V = shape.d_model, shape.ffn_hidden, shape.n_layers, shape.vocab_size
    per_layer = 4 * d * d + 3 * d * f + 2 * d
    non_embedding = L * per_layer + d
    head = 0 if shape.tie_embeddings else V * d
    embedding = V * d + head
    return ParamCount(non_embedding=non_embedding, embedding=embedding,
                      total=non_embedding + embedding, head=head)


def forward_flops_per_token(shape: ModelShape) -> float:
    d, f, L, V, T = (shape.d_model, shape.ffn_hidden, shape.n_layers, shape.vocab_size,
                     shape.context_length)
    matmul_weights = L * (4 * d * d + 3 * d * f) + V * d
    attention = 2 * 2 * L * T * d
    return float(2 * matmul_weights + attention)


def training_flops_per_token(shape: ModelShape) -> float:
    """Forward + backward FLOPs per trained token (3x forward); see the module docstring."""
    return 3.0 * forward_flops_per_token(shape)
