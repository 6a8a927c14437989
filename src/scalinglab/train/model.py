"""A modern decoder-only transformer in plain PyTorch, built from a ``ModelShape``.

RoPE, RMSNorm (pre-norm), SwiGLU, no biases, causal ``F.scaled_dot_product_attention``
(Flash / memory-efficient kernels on GPU), untied output head unless the shape says tied.
Parameter counts match ``counting.count_params`` exactly (tested).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from scalinglab.arch.counting import ModelShape


def rope_tables(seq_len: int, head_dim: int, base: float = 10000.0, device=None):
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()                      # (T, head_dim/2) each


def apply_rope(x, cos, sin):
    # x: (B, H, T, hd); rotate channel pairs (x1, x2) = (first half, second half)
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class Attention(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        d = shape.d_model
        self.n_heads, self.head_dim = shape.n_heads, shape.head_dim
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, d = x.shape
        q, k, v = (w(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
                   for w in (self.wq, self.wk, self.wv))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(B, T, d))


class SwiGLU(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.w_gate = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)
        self.w_up = nn.Linear(shape.d_model, shape.ffn_hidden, bias=False)
        self.w_down = nn.Linear(shape.ffn_hidden, shape.d_model, bias=False)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.attn_norm = RMSNorm(shape.d_model)
        self.attn = Attention(shape)
        self.mlp_norm = RMSNorm(shape.d_model)
        self.mlp = SwiGLU(shape)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layers))
        self.norm = RMSNorm(shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        if shape.tie_embeddings:
            self.head.weight = self.embed.weight
        cos, sin = rope_tables(shape.context_length, shape.head_dim)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        # GPT-2 style: std 0.02, residual projections (wo, w_down) scaled by 1/sqrt(2 n_layers)
        # so the residual stream's variance does not grow with depth.
        residual_std = 0.02 / math.sqrt(2 * self.shape.n_layers)
        for name, p in self.named_parameters():
            if p.ndim == 1:
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "w_down.weight")):
                nn.init.normal_(p, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def hidden(self, idx):
        T = idx.shape[1]
        if T > self.shape.context_length:
            raise ValueError(f"sequence length {T} exceeds the model's context_length "
                             f"{self.shape.context_length}")
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.norm(x)

    def forward(self, idx, targets=None, *, loss_chunk: int | None = None):
        """Logits (B, T, V) when ``targets`` is None, else the mean cross-entropy (nats/token).

        ``loss_chunk``: compute the loss over chunks of that many positions so that full fp32
        logits (B*T x V) are never materialised at once; the backward recomputes each chunk's
        logits (activation checkpointing), so peak memory is one chunk's logits.
        """
        h = self.hidden(idx)
        if targets is None:
            return self.head(h)
        h, targets = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
        if not loss_chunk or loss_chunk >= h.shape[0]:
            return F.cross_entropy(self.head(h).float(), targets)
        total = h.new_zeros((), dtype=torch.float32)
        for hc, tc in zip(h.split(loss_chunk), targets.split(loss_chunk)):
            total = total + torch.utils.checkpoint.checkpoint(
                _chunk_loss_sum, hc, tc, self.head.weight, use_reentrant=False)
        return total / targets.numel()


def _chunk_loss_sum(h, targets, head_weight):
    return F.cross_entropy(F.linear(h, head_weight).float(), targets, reduction="sum")
