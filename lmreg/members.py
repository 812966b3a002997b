"""Several networks trained from different seeds on the same rows: a seed ensemble.

On small data one network's test error is mostly *which* seed it drew and which
validation checkpoint early stopping kept: on diabetes (354 rows) single fits
ranged from 50.2 to 61.1 test MAE, while the average of five seeds' predictions
beat every one of them (docs/benchmarks.md). So :class:`~lmreg.LMRegressor` can
train ``n_members`` networks that share everything but the seed: serializer,
tokenizer, codec and the train/validation split, which stays held out for the
quantile calibration and the RL check.

* **Budget.** ``n_members="auto"`` trains the first network exactly as a single
  fit would (same seed, same deadline) and adds members, up to
  :data:`AUTO_MAX_MEMBERS`, only while early stopping leaves time for another fit
  as long as the longest so far; on data where SFT uses its whole budget it is one
  network, as before. An integer ``n_members`` splits the SFT budget: each member
  may use an equal share of what is left when it starts, so time an early-stopped
  member leaves goes to the next.
* **Combination.** Decisions made exactly on the token tree (the default median
  and quantile levels) and greedy ``mode`` decisions are made by each member and
  averaged (bagging's average, what the measurement used). Samples come from the
  equal-weight mixture: each member draws its share of ``n_samples``
  (:func:`sample_shares`), so ``sample``, ``predict_quantiles``, the calibration and
  the sample-based decisions see the mixture, at the same number of samples. The
  fallback to the training median (``fallback_``) judges the members' average on the
  validation rows, decoded as SFT's validation decodes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ._warnings import warn_user
from .batching import Encoded
from .decoding import decide, quantile_tokens, sample_tokens

#: ``n_members="auto"`` trains at most this many networks.
AUTO_MAX_MEMBERS = 5
#: ``"auto"`` adds a member only if the time left is this many times the longest member's fit.
AUTO_MARGIN = 1.1


def member_seed(seed: int, k: int) -> int:
    """Seed of member ``k``: member 0 keeps the estimator's seed, so one member is a plain fit.

    Examples
    --------
    >>> member_seed(12, 0), member_seed(12, 1) != 12
    (12, True)
    """
    return int(seed) if k == 0 else int((seed + 104_729 * k) % (2**31 - 1))


def sample_shares(n_samples: int, n_members: int) -> list[int]:
    """How many of ``n_samples`` each member draws (equal shares, the first ones take the remainder).

    Examples
    --------
    >>> sample_shares(16, 5), sample_shares(2, 3)
    ([4, 3, 3, 3, 3], [1, 1, 0])
    """
    base, extra = divmod(int(n_samples), int(n_members))
    return [base + (k < extra) for k in range(n_members)]


def member_deadline(n_members, k: int, now: float, deadline: float | None, seconds: list[float]):
    """The SFT deadline of member ``k``, None for no deadline, or False to stop adding.

    ``seconds``: how long each member before it took. Under ``"auto"`` the first member
    gets the whole ``deadline`` (it is the single fit) and a further one is added while
    the time left is at least :data:`AUTO_MARGIN` times the longest of them (never
    without a deadline); an integer ``n_members`` gives each member an equal share of
    the time left.

    Examples
    --------
    >>> member_deadline("auto", 0, now=0.0, deadline=100.0, seconds=[])
    100.0
    >>> member_deadline(4, 0, now=0.0, deadline=100.0, seconds=[])
    25.0
    >>> member_deadline("auto", 1, now=30.0, deadline=100.0, seconds=[30.0])
    100.0
    >>> member_deadline("auto", 1, now=80.0, deadline=100.0, seconds=[80.0])
    False
    >>> member_deadline(3, 1, now=40.0, deadline=100.0, seconds=[40.0])
    70.0
    >>> member_deadline(3, 3, now=90.0, deadline=100.0, seconds=[30.0, 30.0, 30.0])
    False
    """
    if n_members == "auto":
        if k == 0:
            return deadline
        if deadline is None or k >= AUTO_MAX_MEMBERS or deadline - now < AUTO_MARGIN * max(seconds):
            return False
        return deadline
    if k >= n_members:
        return False
    return None if deadline is None else now + (deadline - now) / (n_members - k)


class MemberEnsemble:
    """Training and decoding with the networks in ``members_`` (``members_[0] is model_``)."""

    def _members(self) -> list:
        members = getattr(self, "members_", None)
        return members if members else [self.model_]

    def _fit_members(self, train_member, deadline: float | None, t_start: float) -> None:
        """Train members 1, 2, ... after ``model_`` (trained from ``t_start``) until
        :func:`member_deadline` says stop; ``train_member(model, seed, deadline)`` runs SFT.

        A pretrained backbone keeps one network under ``"auto"`` (its trunk would be
        copied per member); with RL each member gets its own stage afterwards
        (:meth:`~lmreg.stages.HeldOutStages._fit_rl`). A member whose budget was gone
        before its first step is dropped, and no more are tried.
        """
        self.members_, self.member_results_ = [self.model_], [self.fit_result_]
        n = self.n_members
        if n == "auto" and self.backbone is not None:
            return
        seconds = [time.monotonic() - t_start]
        while True:
            now = time.monotonic()
            member_end = member_deadline(n, len(self.members_), now, deadline, seconds)
            if member_end is False:
                return
            seed = member_seed(self.seed_, len(self.members_))
            torch.manual_seed(seed)
            model = self._build_model(seed).to(self.device_)
            result = train_member(model, seed, member_end)
            if result.steps == 0:  # its share of the budget was gone: an untrained net would only add noise
                if n != "auto":
                    warn_user(f"n_members={n} but only {len(self.members_)} network(s) trained: the next one's "
                              f"share of max_time={self.max_time} s was gone before its first step. Raise "
                              "max_time, or ask for fewer members.")
                return
            self.member_results_.append(result)
            self.members_.append(model)
            seconds.append(time.monotonic() - now)
            if self.verbose:
                print(f"member {len(self.members_) - 1}: {self.member_results_[-1].stopped} after "
                      f"{seconds[-1]:.0f} s, best validation error {self.member_results_[-1].best_val_mae:.4g}")

    def _model_samples(self, enc: Encoded, n_samples: int, seed: int) -> np.ndarray:
        """The model's own samples in model units: the members' mixture, each drawing its share."""
        members = self._members()
        if n_samples < len(members):
            warn_user(f"n_samples={n_samples} is fewer than the {len(members)} members: the samples (and the "
                      "quantiles, the mean and the calibration drawn from them) come from the first "
                      f"{n_samples} member(s) only. Raise n_samples to at least {len(members)}.")
        parts = []
        for k, (model, share) in enumerate(zip(members, sample_shares(n_samples, len(members)))):
            if share:
                tokens = sample_tokens(model, enc, self.grammar_, self.tokenizer_.pad_id, n_samples=share,
                                       temperature=self.temperature, seed=member_seed(seed, k),
                                       device=self.device_)
                parts.append(self.codec_.decode(tokens))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _decide(self, enc: Encoded, samples, rule) -> np.ndarray:
        """The decision ``rule``'s prediction in model units: exact on the token tree where it
        can be (:func:`~lmreg.decoding.quantile_tokens`; the members' average), else from ``samples``."""
        level = self._tree_level(rule)
        if level is None:
            return decide(samples, rule)
        return np.mean([self.codec_.decode(quantile_tokens(
            model, enc, self.grammar_, self.tokenizer_.pad_id, [level], temperature=self.temperature,
            device=self.device_))[:, 0] for model in self._members()], axis=0)

    def _greedy_values(self, enc: Encoded) -> np.ndarray:
        """Greedy (``mode``) decodes in model units, averaged over the members."""
        return np.mean([self.codec_.decode(sample_tokens(model, enc, self.grammar_, self.tokenizer_.pad_id,
                                                         greedy=True, device=self.device_))[:, 0]
                        for model in self._members()], axis=0)
