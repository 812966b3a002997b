"""Shared cases for the kernel parity tests (kept tiny: the interpreter costs ~10 ms/program)."""

import torch

# (dtype, absolute tolerance on log-probs/probs, on gradients)
TOLERANCES = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (2e-2, 5e-2)}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def make_case(N=16, H=64, V=300, A=10, dtype=torch.float32, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(N, H, generator=g)
    weight = torch.randn(V, H, generator=g) * H ** -0.5 * 2
    b = torch.randn(V, generator=g) if bias else None
    allowed = torch.randperm(V, generator=g)[:A]
    to = lambda t: None if t is None else t.to(DEVICE, dtype)  # noqa: E731
    return to(hidden), to(weight), to(b), allowed.to(DEVICE)
