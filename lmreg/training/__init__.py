"""Training stages: supervised fine-tuning (``sft``), then RL on the decoded number
(``rl_config``: its settings; ``rl``: sampled GRPO / Dr.GRPO / ReMax; ``tree_rl``: the
variants on the digit tree; ``rewards``; ``rl_stage``: the estimator's keep-or-revert)."""

from .sft import SFTConfig, SFTResult, train_sft

__all__ = ["SFTConfig", "SFTResult", "train_sft"]
