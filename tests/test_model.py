"""The torch model: its parameter count is the counting module's, its losses are consistent."""
import pytest

torch = pytest.importorskip("torch")

from scalinglab.arch.counting import ModelShape, count_params  # noqa: E402
from scalinglab.train.model import Transformer  # noqa: E402


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("dims", [(1, 16, 2, 40, 50, 8), (3, 48, 4, 128, 259, 32)])
def test_numel_matches_count_params(dims, tied):
    shape = ModelShape(*dims, tie_embeddings=tied)
    model = Transformer(shape)
    c = count_params(shape)
    assert sum(p.numel() for p in model.parameters()) == c.total
    non_emb = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("embed.", "head.")))
    assert non_emb == c.non_embedding
    assert model.head.weight.numel() * (not tied) == c.head


def test_chunked_cross_entropy_equals_plain():
    torch.manual_seed(0)
    shape = ModelShape(2, 32, 2, 64, 300, 16)
    model = Transformer(shape)
    x = torch.randint(0, 300, (3, 16))
    y = torch.randint(0, 300, (3, 16))
    plain = model(x, y)
    grads_plain = torch.autograd.grad(plain, list(model.parameters()))
    chunked = model(x, y, loss_chunk=7)          # 48 positions in chunks of 7: uneven last chunk
    grads_chunked = torch.autograd.grad(chunked, list(model.parameters()))
    torch.testing.assert_close(chunked, plain, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads_chunked, grads_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    logits = model(x)
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, 300), y.reshape(-1))
    torch.testing.assert_close(plain, ref)


def test_attention_is_causal():
    torch.manual_seed(0)
    model = Transformer(ModelShape(2, 32, 4, 64, 40, 16))
    x = torch.randint(0, 40, (1, 16))
    x2 = x.clone()
    x2[0, 10:] = (x2[0, 10:] + 1) % 40               # change only the future of position 9
    with torch.no_grad():
        a, b = model(x), model(x2)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_initial_loss_is_near_uniform():
    # std-0.02 init gives near-zero logits: the loss starts at ~log(vocab)
    torch.manual_seed(0)
    model = Transformer(ModelShape(2, 64, 4, 128, 512, 32))
    x = torch.randint(0, 512, (4, 32))
    loss = model(x, torch.randint(0, 512, (4, 32))).item()
    assert loss == pytest.approx(torch.log(torch.tensor(512.0)).item(), abs=0.05)


def test_sequence_longer_than_context_is_rejected():
    model = Transformer(ModelShape(1, 16, 2, 32, 20, 8))
    with pytest.raises(ValueError, match="context_length"):
        model(torch.zeros(1, 9, dtype=torch.long))
