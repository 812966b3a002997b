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
