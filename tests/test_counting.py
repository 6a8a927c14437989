"""Exact parameter / FLOP counts against hand counts (and, in test_model.py, torch's numel)."""
import subprocess
import sys

import pytest

from scalinglab.arch.counting import (ModelShape, ParamCount, count_params,
                                       training_flops_per_token)


def test_hand_count_tiny_shape():
    # n_layers=1, d=4, heads=2, ffn=8, vocab=10, T=16, untied.
    # per layer: Wq,Wk,Wv,Wo = 4*16 = 64; SwiGLU 3*4*8 = 96; two RMSNorm weights 2*4 = 8 -> 168
    # final norm 4 -> non-embedding 172; input table 10*4 = 40; head 10*4 = 40
    shape = ModelShape(n_layers=1, d_model=4, n_heads=2, ffn_hidden=8, vocab_size=10, context_length=16)
    c = count_params(shape)
    assert c == ParamCount(non_embedding=172, embedding=80, total=252, head=40)
    assert c.with_head == 212


def test_tied_embeddings_drop_the_head():
    shape = ModelShape(1, 4, 2, 8, 10, 16, tie_embeddings=True)
    c = count_params(shape)
    assert (c.non_embedding, c.embedding, c.total, c.head) == (172, 40, 212, 0)


def test_hand_count_two_layers():
    # 2 layers, d=8, ffn=16, vocab=5: per layer 4*64 + 3*8*16 + 16 = 256+384+16 = 656
    # non-embedding 2*656 + 8 = 1320; embedding 2*5*8 = 80
    c = count_params(ModelShape(2, 8, 2, 16, 5, 32))
    assert (c.non_embedding, c.embedding, c.total) == (1320, 80, 1400)


def test_flops_hand_count():
    # forward matmuls: 1*(4*16 + 3*4*8) + 10*4 = 64+96+40 = 200 weights -> 400 FLOPs
    # attention: 2*2*1*16*4 = 256 -> forward 656, training 3x = 1968
    shape = ModelShape(n_layers=1, d_model=4, n_heads=2, ffn_hidden=8, vocab_size=10, context_length=16)
    assert training_flops_per_token(shape) == 1968.0


def test_flops_approach_6n_for_wide_models():
    # Kaplan: C ~ 6N when d >> T and the head is small next to the blocks
    shape = ModelShape(n_layers=24, d_model=4096, n_heads=32, ffn_hidden=11008, vocab_size=256,
                       context_length=128)
    n = count_params(shape).non_embedding
    assert training_flops_per_token(shape) / (6 * n) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("bad", [dict(d_model=0), dict(n_heads=3), dict(vocab_size=2.5),
                                 dict(d_model=6, n_heads=2)])
def test_invalid_shapes_are_rejected(bad):
    kw = dict(n_layers=1, d_model=8, n_heads=2, ffn_hidden=8, vocab_size=10, context_length=16)
    kw.update(bad)
    with pytest.raises(ValueError, match="ModelShape"):
        ModelShape(**kw)


def test_counting_does_not_import_torch():
    code = ("import sys, scalinglab.train, scalinglab.arch.counting; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
