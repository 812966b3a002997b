"""Training stages: supervised fine-tuning (``sft``)."""

from .sft import SFTConfig, SFTResult, train_sft

__all__ = ["SFTConfig", "SFTResult", "train_sft"]
