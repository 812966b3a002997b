"""lmreg's rewards inside TRL: a tiny policy trained by ``trl.GRPOTrainer``.

A two-layer character-level Llama, randomly initialised, reads ``lo`` or ``hi`` and must
write a number; the reward is :func:`lmreg.training.rewards.trl_reward` (``abs`` unless the
arm names another) against the targets 2 and 8. The best constant answer (5) has a mean absolute error of 3, so an
error below 3 means the policy learned to read its prompt. Arms differ in what an
unparsable completion gets:

- ``penalty``: the default, a finite reward below every parsable completion of the call;
- ``fixed``: ``invalid_reward=-10``;
- ``neg_inf``: ``-inf``, what the wrapper returned before it took care of TRL's advantages;
- ``crps_loo`` and ``rank``: the group rewards (each completion against the others of its
  prompt: leave-one-out CRPS, rank of the error), with the default penalty.

Before and after training the policy samples 80 completions (seeded); the record holds
the share that parsed, their mean absolute error, the last logged loss and reward and
whether every logged loss was finite.

Usage::

    python benchmarks/trl_grpo.py --steps 400 --seeds 0 1 2 --out benchmarks/results/trl/grpo.json
    python benchmarks/trl_grpo.py --table benchmarks/results/trl/grpo.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

PROMPTS = ("lo", "hi")
TARGETS = (2.0, 8.0)
BEST_CONSTANT_MAE = 3.0  # |5 - 2| = |5 - 8|
ARMS = ("penalty", "fixed", "neg_inf", "crps_loo", "rank")
GENERATIONS = 4


def first_number(text):
    """The first run of digits in ``text`` (ValueError when there is none)."""
    match = re.search(r"\d+(\.\d+)?", text)
    if match is None:
        raise ValueError(f"no number in {text!r}")
    return float(match.group())


def tiny_policy(seed=0):
    """A randomly initialised character-level causal LM and its tokenizer."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = "0123456789.- abcdefghijklmnopqrstuvwxyz:"
    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()  # characters back to text without spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    return LlamaForCausalLM(config), tokenizer


def sample_errors(model, tokenizer, n=80, max_new_tokens=2, seed=1):
    """Sampled completions for ``n`` prompts: (share that parsed, their mean absolute error)."""
    import numpy as np
    import torch

    prompts = [PROMPTS[i % 2] for i in range(n)]
    enc = tokenizer(prompts, return_tensors="pt")
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    errors = []
    for i, text in enumerate(texts):
        try:
            errors.append(abs(first_number(text) - TARGETS[i % 2]))
        except ValueError:
            pass
    return len(errors) / n, float(np.mean(errors)) if errors else math.nan


def reward_for(arm):
    """The TRL reward function of an arm."""
    from lmreg.training.rewards import trl_reward

    if arm == "penalty":
        return trl_reward("abs", parse=first_number)
    if arm == "fixed":
        return trl_reward("abs", parse=first_number, invalid_reward=-10.0)
    if arm == "neg_inf":
        def neg_inf(prompts, completions, target, **kwargs):
            out = []
            for text, y in zip(completions, target):
                try:
                    out.append(-abs(first_number(text) - y))
                except ValueError:
                    out.append(-math.inf)
            return out
        return neg_inf
    if arm in ("crps_loo", "rank"):
        return trl_reward(arm, parse=first_number, num_generations=GENERATIONS)
    raise ValueError(f"unknown arm {arm!r}; choose from {ARMS}")


def run(arm, steps, seed=0, workdir="/tmp/lmreg_trl_grpo", reward=None, learning_rate=3e-3):
    """Train the tiny policy with GRPO for ``steps`` steps; return the record and the trainer."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tokenizer = tiny_policy(seed)
    before = sample_errors(model, tokenizer)
    data = Dataset.from_dict({"prompt": list(PROMPTS) * 8, "target": list(TARGETS) * 8})
    args = GRPOConfig(output_dir=workdir, per_device_train_batch_size=16, num_generations=GENERATIONS,
                      max_completion_length=2, max_steps=steps, learning_rate=learning_rate,
                      logging_steps=min(10, steps), save_strategy="no", report_to="none", use_cpu=True,
                      bf16=False, seed=seed, disable_tqdm=True)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward or reward_for(arm)], args=args,
                          train_dataset=data, processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "loss" in h]
    after = sample_errors(model, tokenizer)
    record = {
        "arm": arm, "seed": seed, "steps": steps, "train_s": round(seconds, 2),
        "parsed_before": before[0], "mae_before": before[1],
        "parsed_after": after[0], "mae_after": after[1],
        "losses_finite": all(math.isfinite(h["loss"]) for h in logs),
        "last_loss": logs[-1]["loss"], "last_reward": logs[-1].get("reward"),
    }
    return record, trainer


def table(records):
    lines = ["| arm | seed | parsed before -> after | MAE before -> after | losses finite | last reward | train s |",
             "|---|---:|---|---|---|---:|---:|"]
    for r in records:
        lines.append(f"| {r['arm']} | {r['seed']} | {r['parsed_before']:.2f} -> {r['parsed_after']:.2f} | "
                     f"{r['mae_before']:.2f} -> {r['mae_after']:.2f} | {r['losses_finite']} | "
                     f"{r['last_reward']:.3g} | {r['train_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    p.add_argument("--table", type=Path, nargs="+", help="print the table of saved records")
    args = p.parse_args(argv)
    if args.table:
        print(table([r for f in args.table for r in json.loads(f.read_text())]))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    records = []
    for seed in args.seeds:
        for arm in args.arms:
            records.append(run(arm, args.steps, seed)[0])
            print(json.dumps(records[-1]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(records, indent=1))
    print(table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
