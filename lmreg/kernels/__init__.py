"""Grammar-constrained decoding ops: Triton kernels with pure-torch references.

``reference`` holds the exact semantics (and is the CPU path). The public
functions below dispatch per call:

* CUDA tensors and Triton installed: the fused Triton kernels;
* ``LMREG_KERNELS=triton``: the Triton kernels for any tensor (on CPU this needs
  ``TRITON_INTERPRET=1`` set before triton is imported: how the parity tests run);
* ``LMREG_KERNELS=reference``, or CPU tensors: the torch reference.

Kernels are imported lazily so ``import lmreg`` never compiles anything.
"""

from __future__ import annotations

import os

import torch

from . import reference
from .reference import allowed_logits, gumbel_noise

__all__ = ["allowed_logits", "allowed_logprobs", "decode_step", "gumbel_noise", "backend_for"]


def backend_for(tensor: torch.Tensor) -> str:
    """``"triton"`` or ``"reference"``: which implementation serves this tensor."""
    mode = os.environ.get("LMREG_KERNELS", "auto")
    if mode not in ("auto", "triton", "reference"):
        raise ValueError(f"LMREG_KERNELS must be auto, triton or reference; got {mode!r}.")
    if mode == "reference":
        return "reference"
    if mode == "triton":
        if not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise RuntimeError("LMREG_KERNELS=triton on CPU tensors needs TRITON_INTERPRET=1 "
                               "set before triton is imported.")
        return "triton"
    if tensor.is_cuda:
        try:
            import triton  # noqa: F401
        except ImportError:
            return "reference"
        return "triton"
    return "reference"


def decode_step(hidden, weight, bias, allowed, temperature=1.0, noise=None, seed=None,
                row_seeds=None, return_probs=False):
    """Sample (or pick greedily) one number token per row; see ``reference.decode_step``."""
    if backend_for(hidden) == "triton":
        from .fused_decode_step import decode_step as fused

        return fused(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds, return_probs)
    return reference.decode_step(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds,
                                 return_probs)


def allowed_logprobs(hidden, weight, bias, allowed, targets, temperature=1.0):
    """Differentiable log-probs of targets over the allowed ids; see ``reference``."""
    if backend_for(hidden) == "triton":
        from .fused_logprob import allowed_logprobs as fused

        return fused(hidden, weight, bias, allowed, targets, temperature)
    return reference.allowed_logprobs(hidden, weight, bias, allowed, targets, temperature)
