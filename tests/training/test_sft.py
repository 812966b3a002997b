"""SFTConfig's own checks: train_sft divided by batch_size and max_epochs, and looped forever
on a negative batch size."""

import pytest
from sklearn.utils._param_validation import InvalidParameterError

from lmreg.training.sft import SFTConfig


@pytest.mark.parametrize("field, value, match", [
    ("batch_size", 0, r"'batch_size' parameter of SFTConfig must be an int in the range \[1, inf\)"),
    ("batch_size", -1, r"'batch_size' .* Got -1"),            # no batch ever came: train_sft hung
    ("max_epochs", 0, r"'max_epochs' .* range \[1, inf\)"),   # ZeroDivisionError
    ("max_epochs", -1, r"'max_epochs'"),                      # ran one step as if it were 1
    ("eval_every", 0, r"'eval_every' .* or None"),
    ("patience", True, r"'patience' parameter of SFTConfig must be a number, not a bool"),
    ("learning_rate", 0.0, r"'learning_rate'"),
    ("min_lr_ratio", 1.5, r"'min_lr_ratio'"),
    ("val_quantile", 1.0, r"'val_quantile'"),
])
def test_bad_fields_are_refused_when_built(field, value, match):
    with pytest.raises(InvalidParameterError, match=match):
        SFTConfig(**{field: value})


def test_the_defaults_and_the_estimators_values_pass():
    assert SFTConfig().batch_size == 32
    cfg = SFTConfig(batch_size=8, max_epochs=1, eval_every=None, val_quantile=0.5, val_temperature=0.01,
                    rps_weight=1.0, warmup_steps=0, grad_clip=0.0)
    assert cfg.val_quantile == 0.5


@pytest.mark.parametrize("max_epochs", [3, 30])   # 12 and 120 steps
def test_a_short_fit_warms_up_and_decays_without_a_cliff(monkeypatch, max_epochs):
    """A fit of fewer than 100 steps ended at its peak rate (still warming up); one just past
    100 dropped it ninefold at step 100 (the cosine had run under the warm-up)."""
    import numpy as np
    import torch

    from lmreg import LMRegressor

    rates, step = [], torch.optim.AdamW.step

    def record(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", record)
    X, y = [f"n {i % 7}" for i in range(120)], np.arange(120.0) % 7
    LMRegressor(max_time=None, max_epochs=max_epochs, validation_fraction=0.0, random_state=0, hidden_size=32,
                num_layers=1, num_heads=2, learning_rate=2e-3).fit(X, y)
    rates = np.array(rates)
    assert len(rates) == 4 * max_epochs   # 120 rows in batches of 32
    assert rates.max() == pytest.approx(2e-3) and rates[-1] < 0.1 * 2e-3   # the floor is 5% of the peak
    assert np.max(rates[:-1] - rates[1:]) < 0.25 * 2e-3                      # no step drops a quarter of it


def test_the_progress_bar_counts_what_ends_the_run(monkeypatch):
    """Under max_time the bar's total was max_epochs x steps: a time-bound fit ended at a
    sliver of it, with an ETA of hours. It now counts the schedule's progress in %."""
    import numpy as np

    from lmreg import LMRegressor
    from lmreg.training import sft

    bars = []

    class Bar:
        def __init__(self, **kwargs):
            self.kwargs, self.n = kwargs, 0
            bars.append(self)

        def update(self, k):
            self.n += k

        def set_postfix(self, **kwargs):
            self.postfix = kwargs

        def close(self):
            pass

    monkeypatch.setattr(sft, "tqdm", Bar)
    X, y = [f"n {i % 7}" for i in range(120)], np.arange(120.0) % 7
    small = dict(random_state=0, hidden_size=32, num_layers=1, num_heads=2, n_members=1, verbose=True,
                 validation_fraction=0.0)   # no early stop: the deadline ends it
    est = LMRegressor(max_time=8, max_epochs=10_000, **small).fit(X, y)
    assert est.fit_result_.stopped == "time" and est.fit_result_.steps > 0
    bar = bars[-1]
    assert bar.kwargs["total"] == 100 and bar.kwargs["unit"] == "%" and 75 <= bar.n <= 100
    est = LMRegressor(max_time=None, max_epochs=2, **small).fit(X, y)
    bar = bars[-1]
    assert bar.kwargs["unit"] == "step" and bar.n == bar.kwargs["total"] == est.fit_result_.steps == 8


def test_without_validation_rows_the_kept_step_is_the_last():
    """best_step stayed 0 though the last weights are the ones kept (the RL stage reports its
    last step in the same case)."""
    import numpy as np

    from lmreg import LMRegressor

    est = LMRegressor(max_time=None, max_epochs=3, random_state=0, hidden_size=16, num_layers=1, num_heads=2,
                      batch_size=8, validation_fraction=0.0).fit([f"row {i}" for i in range(24)], np.arange(24.0))
    r = est.fit_result_
    assert (r.val_rows, r.steps, r.best_step) == (0, 9, 9)
