"""The decode and training paths run the Triton kernels when asked, with the same results."""

import os

import numpy as np
import pytest
import torch

from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
from lmreg.batching import Encoded, collate
from lmreg.decoding import NumberGrammar, constrained_logprobs, sample_tokens
from lmreg.kernels import backend_for

from .common import DEVICE


def _tiny():
    torch.manual_seed(0)
    cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    model = RegressionLM(build_backbone(cfg, 40 + 12), 40, 12).to(DEVICE).eval()
    grammar = NumberGrammar(np.array([[True] * 2 + [False] * 10] + [[False] * 2 + [True] * 10] * 3), device=DEVICE)
    rng = np.random.default_rng(0)
    ids = [rng.integers(1, 40, n).astype(np.int32) for n in (3, 5, 4)]
    enc = Encoded(ids, [np.zeros(len(i), np.float32) for i in ids], [np.zeros(len(i), np.int8) for i in ids])
    return model, grammar, enc


def test_backend_selection(monkeypatch):
    monkeypatch.setenv("LMREG_KERNELS", "reference")
    assert backend_for(torch.zeros(1)) == "reference"
    monkeypatch.setenv("LMREG_KERNELS", "triton")
    if os.environ.get("TRITON_INTERPRET") == "1":
        assert backend_for(torch.zeros(1)) == "triton"
    else:  # CPU tensors cannot run compiled kernels: a clear error, not a crash inside Triton
        with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
            backend_for(torch.zeros(1))
    monkeypatch.setenv("LMREG_KERNELS", "auto")
    assert backend_for(torch.zeros(1)) == "reference"  # CPU tensors: always the reference


def test_greedy_and_sampled_decoding_and_training_loss_agree_across_backends(monkeypatch):
    model, grammar, enc = _tiny()
    out, losses, samples = {}, {}, {}
    targets = torch.tensor([[0, 3, 4, 5], [1, 2, 2, 2], [0, 11, 10, 9]], device=DEVICE)
    for backend in ("reference", "triton"):
        monkeypatch.setenv("LMREG_KERNELS", backend)
        out[backend] = sample_tokens(model, enc, grammar, pad_id=0, greedy=True, device=DEVICE)
        batch = collate(enc, np.arange(3), 0).to(DEVICE)
        hidden, _ = model(batch.ids, batch.values, batch.kinds, batch.attention_mask, number_tokens=targets[:, :-1])
        losses[backend] = constrained_logprobs(model, hidden[:, -4:], grammar, targets)
        samples[backend] = sample_tokens(model, enc, grammar, pad_id=0, n_samples=3, seed=1, device=DEVICE)
    np.testing.assert_array_equal(out["reference"], out["triton"])
    torch.testing.assert_close(losses["triton"], losses["reference"], atol=1e-5, rtol=0)
    assert samples["triton"].shape == (3, 3, 4) and np.isin(samples["triton"][:, :, 0], [0, 1]).all()
    np.testing.assert_array_equal(samples["reference"], samples["triton"])   # one noise generator on both


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_both_backends_refuse_bad_targets_and_temperatures_alike(monkeypatch, backend):
    from lmreg.kernels import allowed_logprobs, decode_step

    if backend == "triton" and not (DEVICE == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):
        pytest.skip("Triton needs a GPU or TRITON_INTERPRET=1")
    monkeypatch.setenv("LMREG_KERNELS", backend)
    torch.manual_seed(0)
    h, w, allowed = torch.randn(4, 8, device=DEVICE), torch.randn(20, 8, device=DEVICE), torch.arange(13, device=DEVICE)
    # the fused kernel gave -inf for 13 and a wrong log-prob for -1; the reference an indexing error
    for bad in (13, -1):
        with pytest.raises(ValueError, match=f"targets index the 13 allowed ids .*got {bad}"):
            allowed_logprobs(h, w, None, allowed, torch.full((4,), bad, device=DEVICE))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        allowed_logprobs(h, w, None, allowed, torch.zeros(4, dtype=torch.long, device=DEVICE), temperature=0.0)
    # a negative temperature: ignored by the reference, logits reversed by the fused kernel
    with pytest.raises(ValueError, match=r"temperature must be >= 0 \(0: greedy\)"):
        decode_step(h, w, None, allowed, temperature=-1.0)
    # near 1e-38, 1 / T and logits / T overflow float32: NaN log-probs on both backends
    with pytest.raises(ValueError, match=r"temperature must be 0 \(greedy\) or at least 1e-06"):
        decode_step(h, w, None, allowed, temperature=1e-40, seed=1)
    with pytest.raises(ValueError, match=r"temperature must be at least 1e-06"):
        allowed_logprobs(h, w, None, allowed, torch.zeros(4, dtype=torch.long, device=DEVICE), temperature=1e-40)
    assert torch.isfinite(decode_step(h, w, None, allowed, temperature=1e-6, seed=1)[1]).all()
    # shapes and ids the fused kernel read past its buffers on (an empty allowed set crashed it)
    for args, match in (((h[0], w, None, allowed), r"hidden must be \[rows, H\]"),
                        ((h, w[:, :4], None, allowed), r"hidden must be \[rows, H\]"),
                        ((h, w, torch.zeros(5, device=DEVICE), allowed), r"bias must have shape \(20,\)"),
                        ((h, w, None, allowed[:0]), "allowed must be a non-empty 1-D tensor"),
                        ((h, w, None, allowed.float()), "allowed must be a non-empty 1-D tensor of integer ids")):
        with pytest.raises(ValueError, match=match):
            decode_step(*args, temperature=0.0)
    if DEVICE == "cpu":
        with pytest.raises(ValueError, match=r"allowed ids must lie in 0 .. 19; got 25"):
            decode_step(h, w, None, torch.tensor([3, 25]), temperature=0.0)
    with pytest.raises(ValueError, match=r"row_seeds must have shape \(4,\)"):
        decode_step(h, w, None, allowed, seed=1, row_seeds=torch.arange(2, device=DEVICE))
    # noise for one row only: broadcast over the rows by the reference, refused by the fused kernel
    for shape in ((13,), (1, 13), (4, 12)):
        with pytest.raises(ValueError, match=r"noise must have shape \(4, 13\)"):
            decode_step(h, w, None, allowed, noise=torch.zeros(shape, device=DEVICE))
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        allowed_logprobs(h, w, None, allowed, torch.zeros(2, dtype=torch.long, device=DEVICE))
    # a bool mask or uint8 ids: read as ids 0 and 1 by the fused kernel, a raw indexing error by the reference
    mask = torch.zeros(20, dtype=torch.bool, device=DEVICE)
    mask[[2, 3, 5]] = True
    for ids in (mask, allowed.to(torch.uint8)):
        with pytest.raises(ValueError, match=r"ids \(int32 or int64\); got shape \(\d+,\) of torch\.(bool|uint8)"):
            decode_step(h, w, None, ids, temperature=0.0)
    # float targets: truncated by the fused kernel, a raw gather error in the reference
    with pytest.raises(ValueError, match="targets must be int32 or int64 indices into allowed; got torch.float32"):
        allowed_logprobs(h, w, None, allowed, torch.tensor([0.9, 1.5, 3.99, 2.0], device=DEVICE))
