import os
import sys

import torch

# Without a GPU, Triton kernels run in its interpreter; the flag must be set before
# anything (transformers, peft) imports triton.
if not torch.cuda.is_available():
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("triton was imported before tests/conftest.py could set TRITON_INTERPRET=1")
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

# Two CI cores: one torch thread per test process avoids oversubscription when the
# suite shares the machine with anything else.
torch.set_num_threads(int(os.environ.get("LMREG_TEST_THREADS", "1")))


def _words(n: int) -> str:
    ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen"]
    tens = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    parts = []
    if n >= 100:
        parts += [ones[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return " ".join(parts)
    if n < 20:
        parts.append(ones[n])
    else:
        parts.append(tens[n // 10] + ("" if n % 10 == 0 else " " + ones[n % 10]))
    return " ".join(parts)


@pytest.fixture(scope="session")
def spelled_numbers():
    """Numbers 0-999 spelled in English: y is a deterministic function of the text."""
    import numpy as np

    rng = np.random.default_rng(0)
    values = rng.permutation(1000)
    return [_words(int(v)) for v in values], values.astype(float)
