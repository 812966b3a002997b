"""Grammar-constrained decoding ops.

``reference`` holds the pure-torch definitions, which are the CPU path; the public
names below are what decoding and training call.
"""

from .reference import allowed_logits, allowed_logprobs, decode_step, gumbel_noise

__all__ = ["allowed_logits", "allowed_logprobs", "decode_step", "gumbel_noise"]
