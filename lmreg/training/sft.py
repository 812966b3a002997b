"""Supervised fine-tuning: cross-entropy on the number tokens, under a time budget.

The loop is deliberately plain (nanoGPT-style): length-bucketed mini-batches,
AdamW with linear warm-up and cosine decay, gradient clipping, and early stopping on
a *numeric* validation metric (MAE in target units of greedy decodes, or of the exact
median the estimator predicts with), keeping the
best weights. The learning-rate schedule runs on the larger of two progress
fractions, steps done / step budget and seconds spent / time budget, so a
time-limited fit still anneals before its deadline.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, validate_parameter_constraints
from tqdm.auto import tqdm

from ..backbone import restore_state, seed_torch, trained_state
from ..batching import Encoded, collate, length_batches
from ..decoding import (NumberGrammar, constrained_logprobs, ranked_probability_scores, sample_tokens,
                        teacher_forced_states)
from ..quantile_decoding import quantile_tokens


@dataclass
class SFTConfig:
    """Hyper-parameters of the supervised stage.

    Defaults were chosen on the public suite with 2 CPU cores: batch 32 and
    lr 2e-3 make the most progress per second for a ~1M-parameter model.

    Attributes
    ----------
    batch_size : int
    learning_rate : float
        Peak AdamW learning rate.
    weight_decay : float
    betas : tuple
        AdamW betas.
    warmup_steps : int
        Steps of linear warm-up, before the cosine decay (fewer when
        :data:`WARMUP_SHARE` of the run comes first).
    min_lr_ratio : float
        Floor of the cosine decay, as a fraction of ``learning_rate``.
    max_epochs : int
    grad_clip : float
        Gradient-norm clipping (0: none).
    eval_every : int or None
        Steps between validation passes; None: twice per epoch, at least 25 steps
        apart.
    patience : int
        Validation passes without improvement before stopping.
    max_eval_rows : int
        Validation rows at most (a random subset, drawn once).
    val_quantile : float or None
        What the validation decodes: None, greedy decoding; a level in (0, 1), the
        exact quantile on the token tree (:func:`~lmreg.quantile_decoding.quantile_tokens`;
        the estimator passes its decision's level, 0.5 for the median, so that
        early stopping and the kept weights judge what ``predict`` returns), judged
        by that level's pinball loss (:func:`decision_errors`; the MAE at 0.5).
    val_temperature : float
        Temperature of the distribution that ``val_quantile`` reads (the estimator
        passes its ``temperature``).
    rps_weight : float
        Weight of the ranked probability score of every number position
        (:func:`~lmreg.decoding.ranked_probability_scores`) added to each row's
        cross-entropy; 0 (this config's default) trains on cross-entropy alone.
        :class:`~lmreg.LMRegressor` passes its own ``rps_weight`` (default 1).

    Examples
    --------
    >>> cfg = SFTConfig(max_epochs=5, patience=2)
    >>> cfg.batch_size, cfg.learning_rate, cfg.max_epochs, cfg.eval_every
    (32, 0.002, 5, None)
    >>> SFTConfig(batch_size=0)
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'batch_size' parameter of SFTConfig must be an int in the range [1, inf). Got 0 instead.
    """

    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    betas: tuple = (0.9, 0.98)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05
    max_epochs: int = 200
    grad_clip: float = 1.0
    eval_every: int | None = None   # steps; None = twice per epoch (at least every 25 steps)
    patience: int = 8               # evaluations without improvement before stopping
    max_eval_rows: int = 1000
    val_quantile: float | None = None
    val_temperature: float = 1.0
    rps_weight: float = 0.0

    def __post_init__(self):
        # train_sft divides by batch_size and max_epochs, and loops until a batch comes
        validate_parameter_constraints(_SFT_CONSTRAINTS, vars(self), caller_name="SFTConfig")
        from ..validation import refuse_flags   # here: lmreg.validation imports this module

        refuse_flags(vars(self), "SFTConfig", _SFT_CONSTRAINTS)


_AT_LEAST_1 = [Interval(Integral, 1, None, closed="left")]
_NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]
_SFT_CONSTRAINTS = {
    "batch_size": _AT_LEAST_1, "max_epochs": _AT_LEAST_1, "patience": _AT_LEAST_1, "max_eval_rows": _AT_LEAST_1,
    "eval_every": [Interval(Integral, 1, None, closed="left"), None],
    "warmup_steps": [Interval(Integral, 0, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")], "weight_decay": _NON_NEGATIVE,
    "min_lr_ratio": [Interval(Real, 0, 1, closed="both")], "grad_clip": _NON_NEGATIVE,
    "val_quantile": [Interval(Real, 0, 1, closed="neither"), None],
    "val_temperature": [Interval(Real, 0, None, closed="neither")], "rps_weight": _NON_NEGATIVE,
}


@dataclass
class SFTResult:
    """What :func:`train_sft` did.

    Attributes
    ----------
    steps : int
        Optimizer steps taken.
    epochs : float
        The same in passes over the training rows.
    best_val_mae : float
        Best validation :func:`target_error`: the MAE, twice the pinball loss for a
        quantile ``val_quantile`` (inf without validation rows).
    best_step : int
        Step of the weights kept (the last, without validation rows).
    stopped : {"epochs", "time", "early"}
        What ended training: ``max_epochs``, the deadline, or ``patience``.
    seconds : float
        Wall-clock time.
    history : list of dict
        One entry per validation pass: ``step``, ``seconds``, ``val_mae`` (and
        ``loss``, the last training loss, except for the closing pass).
    val_rows : int
        Validation rows actually scored (fewer than held out when a slow model would
        have spent more than ``EVAL_SHARE`` of the budget on one pass).
    scored_rows : index array or None
        Those rows, so that the fallback's constant is judged on them too (not saved
        with a model: it only serves the fit that made it).

    Examples
    --------
    >>> r = SFTResult(steps=40, epochs=2.0, best_val_mae=0.5, best_step=30, stopped="early")
    >>> SFTResult(**dict(vars(r))) == r  # how a saved model stores it
    True
    >>> SFTResult().best_val_mae
    inf
    """

    steps: int = 0
    epochs: float = 0.0
    best_val_mae: float = float("inf")
    best_step: int = 0
    stopped: str = "epochs"
    seconds: float = 0.0
    history: list = field(default_factory=list)
    val_rows: int = 0
    scored_rows: np.ndarray | None = field(default=None, repr=False, compare=False)


#: The warm-up ends after ``warmup_steps`` steps or at this share of the run's progress,
#: whichever comes first: a fit that ``max_time`` cuts to a few dozen steps still decays.
WARMUP_SHARE = 0.1


def _lr_factor(progress: float, step: int, cfg: SFTConfig, warm_end: float | None) -> float:
    """The learning rate's share of its peak: a linear warm-up while ``warm_end`` is None,
    then a cosine from 1 at ``warm_end`` (the progress at which the warm-up ended) to
    ``min_lr_ratio`` at progress 1, so that the two join (a cosine on the whole run's
    progress dropped a short fit's rate ninefold at its 100th step).

    >>> cfg = SFTConfig(warmup_steps=100, min_lr_ratio=0.05)
    >>> _lr_factor(0.05, 9, cfg, None), _lr_factor(0.2, 10, cfg, 0.2), _lr_factor(1.0, 40, cfg, 0.2)
    (0.5, 1.0, 0.05)
    """
    progress = min(max(progress, 0.0), 1.0)
    if warm_end is None:   # either ramp: by steps, or by progress for a run too short for the steps
        return min(1.0, max((step + 1) / max(cfg.warmup_steps, 1), progress / WARMUP_SHARE))
    rest = min(max((progress - warm_end) / (1 - warm_end), 0.0), 1.0) if warm_end < 1 else 1.0
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * rest))


#: Largest share of the time budget one validation pass should cost; a larger
#: validation set is subsampled once the training speed is known.
EVAL_SHARE = 0.05


def decision_errors(pred, y, rule=None) -> np.ndarray:
    """Each prediction's loss under the loss its decision ``rule`` minimises.

    ``|pred - y|`` for the median (``None``, ``"median"``, ``"mode"``), twice the pinball
    loss for a quantile level (so the absolute error at 0.5: a 0.9-quantile is judged
    as a 0.9-quantile, not as a median), the squared error for ``"mean"``.

    Examples
    --------
    >>> decision_errors(np.array([1.0, 4.0]), np.array([2.0, 2.0])).tolist()
    [1.0, 2.0]
    >>> decision_errors(np.array([1.0, 4.0]), np.array([2.0, 2.0]), 0.9).round(6).tolist()   # 2*0.9*1, 2*0.1*2
    [1.8, 0.4]
    >>> decision_errors(np.array([1.0, 4.0]), np.array([2.0, 2.0]), "mean").tolist()
    [1.0, 4.0]
    """
    diff = np.asarray(y, float) - pred
    if rule == "mean":
        return np.square(diff)
    if rule is None or isinstance(rule, str):
        return np.abs(diff)
    level = float(rule)
    return 2.0 * np.maximum(level * diff, (level - 1.0) * diff)


def target_error(pred: np.ndarray, y: np.ndarray, scale=None, weights=None, level=None) -> float:
    """MAE in target units (with ``level``, the mean :func:`decision_errors` of that
    quantile level); with several targets, the mean of per-target errors / ``scale``.

    Parameters
    ----------
    pred, y : float array [n] or [n, n_targets]
    scale : float array [n_targets] or None
        Per-target spread (:func:`target_scale`); only used when ``y`` is 2-D.
    weights : float array [n] or None
        Row weights: the weighted mean over rows (``sample_weight``).
    level : float or None
        The quantile level ``pred`` decodes (None: the median).

    Examples
    --------
    >>> target_error(np.array([1.0, 4.0]), np.array([2.0, 2.0]))
    1.5
    >>> y = np.array([[0.0, 0.0], [2.0, 200.0]])
    >>> target_error(y + [1.0, 100.0], y, target_scale(y))  # each target off by one std
    1.0
    >>> target_error(np.array([1.0, 4.0]), np.array([2.0, 2.0]), weights=np.array([3.0, 1.0]))
    1.25
    >>> round(target_error(np.array([1.0, 4.0]), np.array([2.0, 2.0]), level=0.9), 6)
    1.1
    """
    err = decision_errors(pred, y, level)
    if y.ndim == 2:
        err = err / scale
    if weights is None:
        return float(np.mean(err))
    return float(np.average(err.reshape(len(err), -1).mean(axis=1), weights=weights))


def validation_mae(model, enc: Encoded, rows, grammar: NumberGrammar, codec, y, pad_id, device,
                   level: float | None = None, weights=None, temperature: float = 1.0) -> float:
    """:func:`target_error` of greedy decodes (or of the exact ``level``-quantiles, judged
    by that level's pinball loss) on ``rows``.

    Parameters
    ----------
    model : RegressionLM
    enc : Encoded
        All encoded rows; only ``rows`` are decoded.
    rows : index array
    grammar : NumberGrammar
    codec : NumberCodec or MultiTargetCodec
        Turns the decoded tokens into numbers.
    y : float array [n] or [n, n_targets]
        Targets of all rows, in original units.
    pad_id : int
    device : str or torch.device
    level : float or None, default=None
        None: greedy decoding; else the exact quantile on the token tree.
    weights : float array [n] or None, default=None
        Weights of all rows; the error is their weighted mean over ``rows``.
    temperature : float, default=1.0
        Of the distribution whose ``level``-quantile is decoded (greedy decoding does
        not depend on it).

    Examples
    --------
    >>> import torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.codecs import make_codec
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10)
    >>> y = np.array([2.0, 8.0, 5.0])
    >>> codec = make_codec("digits", n_digits=2).fit(y)
    >>> grammar = NumberGrammar(codec.grammar())
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4]), np.array([2, 9, 3])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> mae = validation_mae(model, enc, np.arange(3), grammar, codec, y, pad_id=0, device="cpu")
    >>> tokens = sample_tokens(model, enc, grammar, pad_id=0, greedy=True)[:, 0]
    >>> mae == target_error(codec.decode(tokens), y)
    True
    """
    if level is None:
        tokens = sample_tokens(model, enc.subset(rows), grammar, pad_id, greedy=True, device=device)[:, 0]
    else:
        tokens = quantile_tokens(model, enc.subset(rows), grammar, pad_id, [level], temperature,
                                 device=device)[:, 0]
    return target_error(codec.decode(tokens), y[rows], target_scale(y), None if weights is None else weights[rows],
                        level)


def target_scale(y: np.ndarray):
    """Per-target spread used to put several targets' errors on one scale.

    Returns
    -------
    None when ``y`` is 1-D, else float array [n_targets]
        The standard deviation of each target; for a constant one ``max(|c|, 1)``, the
        scale of its codec's window (a floor near 0 made its smallest decoding error
        outweigh every other target).

    Examples
    --------
    >>> target_scale(np.array([[0.0, 0.1], [2.0, 0.1]])).tolist()
    [1.0, 1.0]
    >>> target_scale(np.array([[0.0, 5e3], [4.0, 5e3]])).tolist()
    [2.0, 5000.0]
    >>> target_scale(np.array([1.0, 2.0])) is None
    True
    """
    if y.ndim == 1:
        return None
    std, size = y.std(axis=0), np.abs(y).max(axis=0)
    constant = std <= 1e-13 * size   # rounding: np.full(n, 0.1).std() can be 1e-17, not 0
    return np.where(constant, np.maximum(size, 1.0), std)


def train_sft(model, enc: Encoded, targets: np.ndarray, y: np.ndarray, codec, grammar: NumberGrammar,
              train_rows: np.ndarray, val_rows: np.ndarray | None, pad_id: int, config: SFTConfig,
              deadline: float | None = None, seed: int = 0, device="cpu", verbose: bool = False,
              weights: np.ndarray | None = None) -> SFTResult:
    """Train ``model`` in place; leaves the best validation weights loaded.

    Parameters
    ----------
    enc : Encoded
        All encoded rows (train and validation).
    targets : int array [n, length]
        Number tokens of every row.
    y : float array [n]
        Targets in original units (for the validation MAE).
    train_rows, val_rows : index arrays
        ``val_rows`` may be None or empty: then the last weights are kept.
    deadline : float or None
        ``time.monotonic()`` value after which no new step starts.
    weights : float array [n] or None
        Row weights (``sample_weight``): each training row's cross-entropy is
        multiplied by its weight (pass them scaled to mean 1 over ``train_rows`` to
        keep the loss's scale), and the validation error is the weighted mean.

    Returns
    -------
    SFTResult

    Examples
    --------
    >>> import torch
    >>> from lmreg.backbone import BackboneConfig, RegressionLM, build_backbone
    >>> from lmreg.codecs import make_codec
    >>> _ = torch.manual_seed(0)
    >>> cfg = BackboneConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    >>> model = RegressionLM(build_backbone(cfg, 20 + 10), 20, 10)
    >>> y = np.array([2.0, 8.0, 5.0])
    >>> codec = make_codec("digits", n_digits=2).fit(y)
    >>> grammar = NumberGrammar(codec.grammar())
    >>> ids = [np.array([2, 5, 3]), np.array([2, 7, 3, 4]), np.array([2, 9, 3])]
    >>> enc = Encoded(ids, [np.zeros(len(r), np.float32) for r in ids],
    ...               [np.zeros(len(r), np.int8) for r in ids])
    >>> result = train_sft(model, enc, codec.encode(y), y, codec, grammar, train_rows=np.arange(3),
    ...                    val_rows=np.array([0, 2]), pad_id=0,
    ...                    config=SFTConfig(batch_size=2, max_epochs=3, warmup_steps=1))
    >>> result.steps, result.epochs, result.stopped  # 2 batches per epoch
    (6, 3.0, 'epochs')
    >>> len(result.history), result.best_step, model.training  # closing validation pass
    (1, 6, False)
    """
    if len(train_rows) == 0:   # no batch would ever come, nor the deadline check inside the loop
        raise ValueError("train_sft needs at least one training row; got none.")
    rng = np.random.default_rng(seed)
    seed_torch(seed, device)
    t0 = time.monotonic()
    budget = None if deadline is None else max(deadline - t0, 1e-6)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=tuple(config.betas),
                            weight_decay=config.weight_decay, foreach=True)   # multi-tensor: torch picks it on CUDA only
    lengths = enc.lengths()[train_rows]
    steps_per_epoch = math.ceil(len(train_rows) / config.batch_size)
    max_steps = config.max_epochs * steps_per_epoch
    eval_every = config.eval_every or max(25, steps_per_epoch // 2)
    has_val = val_rows is not None and len(val_rows) > 0
    if has_val and len(val_rows) > config.max_eval_rows:
        val_rows = np.sort(rng.choice(val_rows, config.max_eval_rows, replace=False))
    targets_t = torch.as_tensor(targets, dtype=torch.long)
    weights_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    result = SFTResult()
    best_state, bad_evals = None, 0
    # Under a deadline the bar counts the schedule's progress (the larger of steps and time,
    # in %), so its ETA is the run's whichever ends it; else steps.
    timed = {} if budget is None else dict(
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
    bar = tqdm(total=max_steps if budget is None else 100, disable=not verbose, desc="sft",
               unit="step" if budget is None else "%", leave=False, **timed)
    model.train()
    step, done, warm_end = 0, False, None
    # Until the first validation pass is timed, guess its cost from the training
    # speed (forward-only greedy decoding of the validation prompts).
    val_tokens = int(enc.lengths()[val_rows].sum()) if has_val else 0
    eval_cost, train_tokens, t_warm = 0.0, 0, t0
    while not done:
        for local in length_batches(lengths, config.batch_size, rng):
            now = time.monotonic()
            # Leave room (with a margin: its time varies) for the closing validation pass.
            if deadline is not None and now + 1.5 * eval_cost >= deadline:
                result.stopped, done = "time", True
                break
            progress = step / max_steps
            if budget is not None:
                progress = max(progress, (now - t0) / budget)
            if warm_end is None and (step >= config.warmup_steps or progress >= WARMUP_SHARE):
                warm_end = progress
            lr = config.learning_rate * _lr_factor(progress, step, config, warm_end)
            for g in opt.param_groups:
                g["lr"] = lr
            rows = train_rows[local]
            batch = collate(enc, rows, pad_id).to(device)
            tgt = targets_t[rows].to(device)
            states = teacher_forced_states(model, batch, grammar, tgt)
            # the codec encoded the targets: the grammar allows them, no check (and its syncs) per step
            row_loss = -constrained_logprobs(model, states, grammar, tgt, check=False).sum(dim=1)
            if config.rps_weight:
                rps = ranked_probability_scores(model, states, grammar, tgt, check=False)
                row_loss = row_loss + config.rps_weight * rps.sum(dim=1)
            loss = row_loss.mean() if weights_t is None else (weights_t[rows].to(device) * row_loss).mean()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {loss.item()} at step {step}; "
                                         "lower learning_rate.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            step += 1
            if step == 1:
                # The first step carries one-off costs (CUDA context, Triton JIT compiles:
                # seconds on a GPU); counting it would overestimate the evaluation cost and
                # let the deadline guard stop training at once.
                t_warm = time.monotonic()
            else:
                train_tokens += int(batch.attention_mask.sum())
                if not result.history and has_val:
                    eval_cost = 0.5 * val_tokens * (time.monotonic() - t_warm) / train_tokens
                    if step == 2 and budget is not None and eval_cost > EVAL_SHARE * budget and len(val_rows) > 32:
                        # A slow model (a pretrained backbone on a CPU) would spend the budget
                        # validating: validate on a random subset that costs ~EVAL_SHARE of it.
                        keep = max(32, int(len(val_rows) * EVAL_SHARE * budget / eval_cost))
                        val_rows = np.sort(rng.choice(val_rows, min(keep, len(val_rows)), replace=False))
                        val_tokens_new = int(enc.lengths()[val_rows].sum())
                        eval_cost *= val_tokens_new / val_tokens
                        val_tokens = val_tokens_new
            if budget is None:
                bar.update(1)
            else:
                done_pct = int(100 * min(1.0, max(step / max_steps, (time.monotonic() - t0) / budget)))
                bar.update(done_pct - bar.n)   # whole percents: a float sum crept past the total
            if step % 10 == 0:
                bar.set_postfix(step=step, loss=f"{loss.item():.3f}", lr=f"{lr:.1e}")

            if has_val and (step % eval_every == 0):
                # An evaluation that would overrun the budget ends training instead.
                if deadline is not None and time.monotonic() + 1.5 * eval_cost >= deadline:
                    result.stopped, done = "time", True
                    break
                t_eval = time.monotonic()
                mae = validation_mae(model, enc, val_rows, grammar, codec, y, pad_id, device, config.val_quantile, weights,
                             config.val_temperature)
                eval_cost = time.monotonic() - t_eval
                result.history.append({"step": step, "seconds": time.monotonic() - t0,
                                       "loss": float(loss.item()), "val_mae": mae})
                if mae < result.best_val_mae * (1 - 1e-4):
                    result.best_val_mae, result.best_step, bad_evals = mae, step, 0
                    best_state = trained_state(model)
                else:
                    bad_evals += 1
                    if bad_evals >= config.patience:
                        result.stopped, done = "early", True
                        break
            if step >= max_steps:
                done = True
                break
    bar.close()

    # No step ran (the budget was gone before the first one): nothing to validate.
    if has_val and step > 0 and (not result.history or result.history[-1]["step"] != step):
        mae = validation_mae(model, enc, val_rows, grammar, codec, y, pad_id, device, config.val_quantile, weights,
                             config.val_temperature)
        result.history.append({"step": step, "seconds": time.monotonic() - t0, "val_mae": mae})
        if mae < result.best_val_mae:
            result.best_val_mae, result.best_step, best_state = mae, step, None
    if best_state is not None:
        restore_state(model, best_state)
    # The loss is checked before each step; the last step's update is checked here.
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters() if p.requires_grad):
        raise FloatingPointError(f"the weights became NaN or infinite at step {step}; lower learning_rate.")
    model.eval()
    result.steps = step
    if not has_val:   # nothing chose a checkpoint: the last weights stay
        result.best_step = step
    result.val_rows = len(val_rows) if has_val else 0
    result.scored_rows = np.asarray(val_rows) if has_val else None
    result.epochs = step / steps_per_epoch
    result.seconds = time.monotonic() - t0
    return result
