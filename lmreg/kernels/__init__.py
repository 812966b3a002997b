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
    """``"triton"`` or ``"reference"``: which implementation serves this tensor.

    Decided by the tensor's device and the ``LMREG_KERNELS`` environment variable
    (see the module docstring).

    Raises
    ------
    ValueError
        When ``LMREG_KERNELS`` is not ``auto``, ``triton`` or ``reference``.
    RuntimeError
        For ``LMREG_KERNELS=triton`` on a CPU tensor without ``TRITON_INTERPRET=1``.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"LMREG_KERNELS": "auto"}):
    ...     backend_for(torch.zeros(1))  # CPU tensors: the torch reference
    'reference'
    >>> with mock.patch.dict(os.environ, {"LMREG_KERNELS": "fast"}):
    ...     backend_for(torch.zeros(1))
    Traceback (most recent call last):
    ...
    ValueError: LMREG_KERNELS must be auto, triton or reference; got 'fast'.
    """
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


MIN_TEMPERATURE = 1e-6


def check_temperature(temperature, greedy_zero: bool) -> None:
    """Both backends read the same temperatures: a negative one (or 0 where it is not
    greedy decoding) is an error, not logits reversed by one and ignored by the other.
    So is one below ``MIN_TEMPERATURE``: near 1e-38, ``1 / T`` and ``logits / T``
    overflow float32 on both backends and give NaN log-probs (the estimator stops at 0.01)."""
    ok = temperature >= 0 if greedy_zero else temperature > 0
    if not ok:   # NaN too
        raise ValueError(f"temperature must be {'>= 0 (0: greedy)' if greedy_zero else '> 0'}; got {temperature!r}.")
    if 0 < temperature < MIN_TEMPERATURE:
        raise ValueError(f"temperature must be {'0 (greedy) or ' if greedy_zero else ''}at least {MIN_TEMPERATURE:g}: "
                         f"logits / temperature overflow float32 near 1e-38; got {temperature!r}.")


#: Integer types ids may have (a bool mask or uint8 would be read as ids 0 and 1).
ID_DTYPES = (torch.int32, torch.int64)


def _check_shapes(hidden, weight, bias, allowed, row_seeds=None, targets=None, noise=None) -> None:
    """The arguments both backends read, checked for what costs no host sync: the fused
    kernels would read past their buffers on a wrong shape (an empty ``allowed`` crashes
    the process). The ids' range is checked on CPU tensors only (on a GPU it would cost a
    sync every step; :class:`~lmreg.decoding.NumberGrammar` builds valid ones)."""
    if hidden.ndim != 2 or weight.ndim != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"hidden must be [rows, H] and weight [V, H]; got {tuple(hidden.shape)} and "
                         f"{tuple(weight.shape)}.")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), one value per id; got {tuple(bias.shape)}.")
    if allowed.ndim != 1 or allowed.numel() == 0 or allowed.dtype not in ID_DTYPES:   # not a bool mask
        raise ValueError(f"allowed must be a non-empty 1-D tensor of integer ids (int32 or int64); got shape "
                         f"{tuple(allowed.shape)} of {allowed.dtype}.")
    if targets is not None and targets.dtype not in ID_DTYPES:   # the kernel would truncate floats
        raise ValueError(f"targets must be int32 or int64 indices into allowed; got {targets.dtype}.")
    if allowed.device.type == "cpu":
        lo, hi = (int(v) for v in torch.aminmax(allowed))
        if lo < 0 or hi >= weight.shape[0]:
            raise ValueError(f"allowed ids must lie in 0 .. {weight.shape[0] - 1}; got {lo if lo < 0 else hi}.")
    for name, values in (("row_seeds", row_seeds), ("targets", targets)):
        if values is not None and tuple(values.shape) != (hidden.shape[0],):
            raise ValueError(f"{name} must have shape ({hidden.shape[0]},), one per row; got {tuple(values.shape)}.")
    if noise is not None and tuple(noise.shape) != (hidden.shape[0], allowed.numel()):   # the reference broadcast [A]
        raise ValueError(f"noise must have shape ({hidden.shape[0]}, {allowed.numel()}), one value per row and "
                         f"allowed id; got {tuple(noise.shape)}.")


def decode_step(hidden, weight, bias, allowed, temperature=1.0, noise=None, seed=None,
                row_seeds=None, return_probs=False):
    """Sample (or pick greedily) one number token per row; see ``reference.decode_step``.

    Same arguments and results as :func:`lmreg.kernels.reference.decode_step`, served
    by the backend :func:`backend_for` picks for ``hidden``; a negative or NaN
    ``temperature`` is a ValueError.

    Examples
    --------
    >>> weight = torch.eye(4)  # logits = hidden over a vocabulary of 4 ids
    >>> hidden = torch.tensor([[0.0, 5.0, 1.0, 9.0], [3.0, 0.0, 2.0, 0.0]])
    >>> tokens, logprob, _ = decode_step(hidden, weight, None, torch.tensor([0, 2]), temperature=0)
    >>> tokens.tolist()  # the best *allowed* id: 1 and 3 score higher but are not allowed
    [2, 0]
    >>> [round(p, 4) for p in logprob.exp().tolist()]
    [0.7311, 0.7311]
    """
    check_temperature(temperature, greedy_zero=True)
    _check_shapes(hidden, weight, bias, allowed, row_seeds=row_seeds, noise=noise)
    if backend_for(hidden) == "triton":
        from .fused_decode_step import decode_step as fused

        return fused(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds, return_probs)
    return reference.decode_step(hidden, weight, bias, allowed, temperature, noise, seed, row_seeds,
                                 return_probs)


def allowed_logprobs(hidden, weight, bias, allowed, targets, temperature=1.0, check=True):
    """Differentiable log-probs of targets over the allowed ids; see ``reference``.

    Same arguments and result as :func:`lmreg.kernels.reference.allowed_logprobs`,
    served by the backend :func:`backend_for` picks for ``hidden``. ``temperature``
    must be positive; with ``check`` a target outside ``0 .. len(allowed) - 1`` is a
    ValueError (one host sync: the fused kernel would return -inf or a wrong
    log-prob for it; :func:`~lmreg.decoding.constrained_logprobs`, which checks its
    targets against the grammar, passes ``check=False``).

    Examples
    --------
    >>> hidden = torch.tensor([[0.0, 5.0, 1.0, 9.0], [3.0, 0.0, 2.0, 0.0]])
    >>> allowed = torch.tensor([0, 2])
    >>> lp = allowed_logprobs(hidden, torch.eye(4), None, allowed, targets=torch.tensor([1, 1]))
    >>> [round(p, 4) for p in lp.exp().tolist()]  # targets index allowed: both are id 2
    [0.7311, 0.2689]
    """
    check_temperature(temperature, greedy_zero=False)
    _check_shapes(hidden, weight, bias, allowed, targets=targets)
    if check and targets.numel():
        lo, hi = (int(v) for v in torch.aminmax(targets))
        if lo < 0 or hi >= allowed.numel():
            raise ValueError(f"targets index the {allowed.numel()} allowed ids (0 .. {allowed.numel() - 1}); "
                             f"got {lo if lo < 0 else hi}.")
    if backend_for(hidden) == "triton":
        from .fused_logprob import allowed_logprobs as fused

        return fused(hidden, weight, bias, allowed, targets, temperature)
    return reference.allowed_logprobs(hidden, weight, bias, allowed, targets, temperature)
