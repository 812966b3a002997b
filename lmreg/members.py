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
  equal-weight mixture: each member draws its share of ``n_samples``, the remainder
  going to members drawn per row (:func:`sample_shares`), so ``sample``,
  ``predict_quantiles``, the calibration and the sample-based decisions see the
  mixture, at the same number of samples. The
  fallback to the training median (``fallback_``) judges the members' average on the
  validation rows, decoded as SFT's validation decodes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from . import kernels
from ._warnings import warn_user
from .backbone import seed_torch
from .batching import Encoded
from .decoding import decide, row_keys, sample_tokens
from .quantile_decoding import quantile_tokens

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


def sample_shares(n_samples: int, n_members: int, keys: torch.Tensor, seed: int = 0) -> np.ndarray:
    """How many of ``n_samples`` each member draws for each row: ``n_samples // n_members``
    each, and one more for ``n_samples % n_members`` members drawn per row from its key and
    ``seed``. Each member's expected share is then ``1 / n_members``: giving the remainder
    to the first members weighed member 0 of five 25% in 16 samples, not 20%.

    Parameters
    ----------
    n_samples, n_members : int
    keys : LongTensor [n_rows]
        One key per row (:func:`~lmreg.decoding.row_keys`): a row's shares do not depend on
        the rows next to it.
    seed : int, default=0

    Returns
    -------
    ndarray [n_rows, n_members] of int

    Examples
    --------
    >>> shares = sample_shares(16, 5, torch.arange(3000))
    >>> sorted(set(shares.sum(axis=1).tolist())), int(shares.min()), int(shares.max())
    ([16], 3, 4)
    >>> (shares == 4).mean(axis=0).round(2).tolist()   # the remainder: each member as often
    [0.2, 0.21, 0.19, 0.2, 0.2]
    """
    base, extra = divmod(int(n_samples), int(n_members))
    shares = np.full((len(keys), n_members), base, dtype=np.int64)
    if extra:
        mix = kernels.reference.mix32
        row = mix(keys.long() * 0x9E3779B9 + int(seed))
        order = mix(row[:, None] * 0x85EBCA6B + torch.arange(n_members)).argsort(dim=1)
        shares[np.arange(len(keys))[:, None], order[:, :extra].numpy()] += 1
    return shares


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
        if n == "auto" and self.backbone is not None or self.fit_result_.steps == 0:
            return   # (no step in the first network's share: none would fit in the next ones')
        seconds = [time.monotonic() - t_start]
        while True:
            now = time.monotonic()
            member_end = member_deadline(n, len(self.members_), now, deadline, seconds)
            if member_end is False:
                return
            seed = member_seed(self.seed_, len(self.members_))
            seed_torch(seed)   # built on the CPU
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
        """The model's own samples in model units: the members' mixture, each drawing its
        share of each row (:func:`sample_shares`), in member order."""
        members = self._members()
        if len(members) == 1:
            return self.codec_.decode(sample_tokens(
                self.model_, enc, self.grammar_, self.tokenizer_.pad_id, n_samples=n_samples,
                temperature=self.temperature, seed=seed, device=self.device_))
        if n_samples < len(members):
            warn_user(f"n_samples={n_samples} is fewer than the {len(members)} members: each row's samples (and "
                      "the quantiles, the mean and the calibration drawn from them) come from "
                      f"{n_samples} of them. Raise n_samples to at least {len(members)}.")
        shares = sample_shares(n_samples, len(members), row_keys(enc), seed)
        parts, kept = [], []
        for k, model in enumerate(members):
            most = int(shares[:, k].max())   # the rows that draw one sample less drop their last
            if most:
                tokens = sample_tokens(model, enc, self.grammar_, self.tokenizer_.pad_id, n_samples=most,
                                       temperature=self.temperature, seed=member_seed(seed, k),
                                       device=self.device_)
                parts.append(self.codec_.decode(tokens))
                kept.append(np.arange(most)[None, :] < shares[:, k:k + 1])
        pooled, kept = np.concatenate(parts, axis=1), np.concatenate(kept, axis=1)
        return pooled[kept].reshape((len(enc), n_samples) + pooled.shape[2:])   # [n, S(, targets)]

    def _decide(self, enc: Encoded, samples, rule) -> np.ndarray:
        """The decision ``rule``'s prediction in model units: exact on the token tree where it
        can be (:func:`~lmreg.quantile_decoding.quantile_tokens`; the members' average), else from ``samples``."""
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
