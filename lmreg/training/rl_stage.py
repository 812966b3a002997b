"""The estimator's RL stage around :func:`~lmreg.training.rl.train_rl`: rows and keep-or-revert.

:func:`~lmreg.training.rl.train_rl` is the algorithm; this module decides which rows
prompt it and which rows judge it, and which weights stay afterwards:

* :func:`stage_rows`: RL prompts from the SFT training rows, from half of the
  validation rows, or both (``RLConfig.prompt_rows``); the rows that judge are
  validation rows no prompt came from, at most :data:`RL_CHECK_ROWS` of them;
* :func:`run_stage`: scores the SFT weights, runs RL with checkpoints, keeps the
  checkpoint with the lowest validation error among those that lower the error
  without raising the validation CRPS (unless ``RLConfig.guard_crps`` is off), else
  restores the SFT weights.

Scoring is the caller's (``score() -> (error, crps, samples)`` with the estimator's
own samples and decision rule), so the check judges exactly what ``predict`` will
use; the samples of the weights that stay are handed back (the estimator calibrates
its quantiles on them without sampling again).
"""

from __future__ import annotations

import copy
import time

import numpy as np

from .rl import train_rl

#: Validation rows (at most) scored before RL and at its checkpoints.
RL_CHECK_ROWS = 512
PROMPT_ROWS = ("train", "holdout", "both")


def stage_rows(prompt_rows: str, train_rows: np.ndarray, val_rows: np.ndarray, rng: np.random.Generator,
               max_check: int = RL_CHECK_ROWS):
    """RL prompts and the validation rows that judge the RL weights.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> prompts, check = stage_rows("holdout", np.arange(10), np.arange(10, 20), rng)
    >>> len(prompts), len(check), bool(set(prompts) & set(check))
    (5, 5, False)
    >>> prompts, check = stage_rows("train", np.arange(10), np.arange(10, 20), rng, max_check=3)
    >>> len(prompts), len(check), set(check) <= set(range(10, 20))
    (10, 3, True)
    """
    if prompt_rows not in PROMPT_ROWS:
        raise ValueError(f"rl_config prompt_rows must be one of {PROMPT_ROWS}; got {prompt_rows!r}.")
    prompts, check = train_rows, val_rows
    if prompt_rows != "train":
        if len(val_rows) < 4:
            raise ValueError(f"rl_config prompt_rows={prompt_rows!r} draws RL prompts from the validation "
                             f"rows, but there are {len(val_rows)}; raise validation_fraction.")
        shuffled = rng.permutation(val_rows)
        held, check = np.sort(shuffled[: len(val_rows) // 2]), np.sort(shuffled[len(val_rows) // 2:])
        prompts = held if prompt_rows == "holdout" else np.concatenate([train_rows, held])
    if len(check) > max_check:
        check = np.sort(rng.choice(check, max_check, replace=False))
    return prompts, check


def run_stage(model, train_args: tuple, score, deadline: float | None, guard_crps: bool = True, **train_kw):
    """RL on ``model`` in place; returns the result and the kept weights' check samples.

    Parameters
    ----------
    model : RegressionLM
    train_args : tuple
        The positional arguments of :func:`~lmreg.training.rl.train_rl` after ``model``.
    score : callable or None
        ``score() -> (error, crps, samples)`` of ``model`` on the judging rows; None
        when there are none (the RL weights then stay).
    deadline : float or None
        ``time.monotonic()`` value; the closing check's cost is reserved before it.
    guard_crps : bool, default=True
        Refuse checkpoints whose CRPS is above the SFT weights' (``RLConfig.guard_crps``).
    **train_kw
        ``seed``, ``device`` for :func:`~lmreg.training.rl.train_rl`.

    Returns
    -------
    result : ~lmreg.training.rl.RLResult
    samples : the third item of ``score()`` for the weights left in place (None
        without ``score``)
    """
    if score is None:
        result = train_rl(model, *train_args, deadline=deadline, **train_kw)
        model.eval()
        return result, None
    sft_state = copy.deepcopy(model.state_dict())
    t = time.monotonic()
    base = score()
    cost = time.monotonic() - t
    best = {"error": base[0], "state": None, "step": 0, "samples": base[2]}
    checks = []

    def on_check(model, step):  # train_rl keeps the model in eval mode
        error, crps, samples = score()
        checks.append({"step": step, "error": error, "crps": crps})
        # A lower point error bought by a collapsed distribution (higher CRPS) is refused.
        if error < best["error"] and (crps <= base[1] or not guard_crps):
            best.update(error=error, state=copy.deepcopy(model.state_dict()), step=step, samples=samples)

    # The closing check runs inside the budget: RL stops one check's cost early.
    result = train_rl(model, *train_args, deadline=None if deadline is None else deadline - cost,
                      on_check=on_check, **train_kw)
    on_check(model, result.steps)
    result.val_before = {"error": base[0], "crps": base[1]}
    result.val_after = {k: checks[-1][k] for k in ("error", "crps")}
    result.checks, result.best_step = checks, best["step"]
    result.kept = best["state"] is not None
    result.val_mae = best["error"]
    model.load_state_dict(best["state"] if result.kept else sft_state)
    return result, best["samples"]
