"""Where along the RL update the best weights lie: SFT + alpha * (RL - SFT), paired.

``rl_paired.py`` reports the weights the RL stage keeps. This script looks at the
stage's *final* weights whatever the check decided, and at the straight line
through them and the SFT weights they started from: ``alpha = 0`` is the SFT
model, ``1`` the end of RL, ``0.5`` the halfway interpolation (weight-space
ensembling, Wortsman et al. 2022, WiSE-FT) and ``alpha > 1`` extrapolation
beyond it (Zheng et al. 2024, ExPO). Each point is scored on the judging
validation rows (what a keep rule could see) and on the test split (MAE of
``predict``). The SFT weights are also scored on 512 of the training rows RL
prompts from (``sft_train_error``): how much of them SFT memorised.

``--decisions`` scores the test split under other decision rules as well
(``test_mae_by_decision``): ``mode`` (greedy decoding), ``mean`` (of the samples)
and ``sample1`` (the expected error of one sample, from ``n_samples`` draws): RL's
published gains (arXiv 2512.06533) are measured on such decodes, lmreg's
``predict`` takes the exact median of the token tree.

``--dropout`` runs the ``median`` learner's walk with the model in training mode
(dropout on, as in SFT) instead of the RL stage's evaluation mode: a regulariser
tried against the validation error rising on lending_club_rate and diabetes.

Usage::

    python benchmarks/rl_weights.py --datasets tweets_engagement ames_housing --rl-time 150 \\
        --cache benchmarks/results/rlp/sft_cache --out results/rl_weights.json [--dropout] \
        [--decisions median mode mean sample1]
    python benchmarks/rl_weights.py --decision-table results/rl_weights.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

import numpy as np

from lmreg import load, load_dataset
from lmreg.bench import environment
from lmreg.datasets import list_datasets
from lmreg.training.rl_config import RLConfig

from rl_paired import RL_DEFAULTS, cache_path, sft_model


def _capture_final(store: dict) -> None:
    """Make the RL stage leave a copy of its final weights in ``store["final"]``."""
    import lmreg.training.rl_stage as stage

    train = stage.train_rl

    def train_and_keep(model, *args, **kwargs):
        result = train(model, *args, **kwargs)
        store["final"] = copy.deepcopy(model.state_dict())
        return result

    stage.train_rl = train_and_keep


def _dropout_on() -> None:
    """Run the ``median`` loss with the learner in training mode (dropout on)."""
    import lmreg.training.rl as rl

    loss = rl.T.median_loss

    def with_dropout(model, *args, **kwargs):
        model.train()
        try:
            return loss(model, *args, **kwargs)
        finally:
            model.eval()

    rl.T.median_loss = with_dropout


def decision_maes(est, Xt, yt, rules) -> dict:
    """Test MAE of ``predict`` under each decision rule; ``sample1``: mean |one sample - y|."""
    out, kept = {}, est.decision
    for rule in rules:
        if rule == "sample1":
            out[rule] = float(np.mean(np.abs(est.sample(Xt) - np.asarray(yt)[:, None])))
            continue
        est.set_params(decision=rule)
        out[rule] = float(np.mean(np.abs(est.predict(Xt) - yt)))
    est.set_params(decision=kept)
    return out


def decision_table(records) -> str:
    """Markdown: per dataset and arm, the SFT model's test MAE under each decision rule and
    what the stage's final weights (``alpha = 1``) changed, whatever the check decided.

    Examples
    --------
    >>> pts = [{"alpha": 0.0, "test_mae_by_decision": {"median": 2.0, "mode": 3.0}},
    ...        {"alpha": 1.0, "test_mae_by_decision": {"median": 2.2, "mode": 2.4}}]
    >>> rec = {"dataset": "d", "params": {"rl_variant": "remax"}, "rl_steps": 9, "kept": False, "points": pts}
    >>> print(decision_table([rec]))
    | dataset | arm (RL steps, check) | SFT test MAE: median / mode | RL: median | RL: mode | best rule after RL vs SFT median |
    |---|---|---|---:|---:|---:|
    | d | remax (9, reverted) | 2 / 3 | +10.0% | -20.0% | +10.0% |
    """
    rules = list(records[0]["points"][0]["test_mae_by_decision"])
    lines = [f"| dataset | arm (RL steps, check) | SFT test MAE: {' / '.join(rules)} | "
             + " | ".join(f"RL: {r}" for r in rules) + " | best rule after RL vs SFT median |",
             "|---|---|---|" + "---:|" * (len(rules) + 1)]
    for rec in records:
        before = next(q for q in rec["points"] if q["alpha"] == 0.0)["test_mae_by_decision"]
        after = next(q for q in rec["points"] if q["alpha"] == 1.0)["test_mae_by_decision"]
        arm = rec["params"].get("rl_variant", "median")
        lines.append(f"| {rec['dataset']} | {arm} ({rec['rl_steps']}, {'kept' if rec['kept'] else 'reverted'}) | "
                     + " / ".join(f"{before[r]:.4g}" for r in rules) + " | "
                     + " | ".join(f"{after[r] / before[r] - 1:+.1%}" for r in rules)
                     + f" | {min(after.values()) / before['median'] - 1:+.1%} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", default=None)
    p.add_argument("--sft-time", type=float, default=150.0)
    p.add_argument("--rl-time", type=float, default=150.0)
    p.add_argument("--params", default="{}", help="JSON estimator parameters on top of the RL defaults")
    p.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    p.add_argument("--dropout", action="store_true", help="the median learner's walk with dropout on")
    p.add_argument("--decisions", nargs="+", default=[], metavar="RULE",
                   help="also score test MAE under these rules (median, mode, mean, sample1)")
    p.add_argument("--cache", default="benchmarks/results/sft_cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/rl_weights.json")
    p.add_argument("--decision-table", nargs="+", metavar="JSON",
                   help="print the decision-rule table of earlier --decisions runs and exit")
    args = p.parse_args(argv)
    if args.decision_table:
        print(decision_table([r for path in args.decision_table for r in json.load(open(path))]))
        return 0
    if 0.0 not in args.alphas:
        p.error("--alphas must include 0 (the SFT weights every point is compared with)")
    import torch

    torch.set_num_threads(args.threads)
    store, records, env = {}, [], environment(args.threads)
    _capture_final(store)
    if args.dropout:
        _dropout_on()
    params = json.loads(args.params)
    for ds in args.datasets or list_datasets():
        X, y = load_dataset(ds, "train")
        Xt, yt = load_dataset(ds, "test")
        sft_model(ds, X, y, args)             # fitted and cached when missing
        est = load(cache_path(ds, args))
        est.set_params(**{**RL_DEFAULTS, "n_threads": args.threads, "rl_steps": 1_000_000, **params})
        sft = copy.deepcopy(est.model_.state_dict())
        t = time.perf_counter()
        est.reinforce(X, y, max_time=args.rl_time)
        rl_s, result = time.perf_counter() - t, est.rl_result_
        kept_mae = float(np.mean(np.abs(est.predict(Xt) - yt)))
        enc, y_model, (train_rows, val_rows), _ = est._refit_data(X, y, None, "reinforce")
        prompt_rows = (est.rl_config or {}).get("prompt_rows", RLConfig.prompt_rows)
        judging = est._judging_rows(train_rows, val_rows, prompt_rows)[1]
        # How far SFT memorised the rows RL prompts from: 512 of them, scored like the judging rows.
        seen = np.sort(np.random.default_rng(args.seed).choice(train_rows, min(512, len(train_rows)), replace=False))
        points, train_error = [], None
        for alpha in args.alphas:
            est.model_.load_state_dict({k: v + alpha * (store["final"][k] - v) if v.is_floating_point() else v
                                        for k, v in sft.items()})
            with est._torch_scope():
                errors = est._rl_check(enc, y_model, judging)[0]
                if alpha == 0.0:
                    train_error = float(np.mean(est._rl_check(enc, y_model, seen)[0]))
            by_rule = decision_maes(est, Xt, yt, args.decisions)
            test_mae = by_rule.get(est.decision)   # predict's own rule, when it was among them
            if test_mae is None:
                test_mae = float(np.mean(np.abs(est.predict(Xt) - yt)))
            points.append({"alpha": alpha, "val_error": float(np.mean(errors)), "test_mae": test_mae,
                           "test_mae_by_decision": by_rule})
        base = next(q for q in points if q["alpha"] == 0.0)
        for q in points:
            q["d_val"], q["d_test"] = q["val_error"] / base["val_error"] - 1, q["test_mae"] / base["test_mae"] - 1
            by = "  ".join(f"{rule} {100 * (v / base['test_mae_by_decision'][rule] - 1):+.1f}%"
                           for rule, v in q["test_mae_by_decision"].items())
            print(f"{ds:20s} alpha {q['alpha']:.2f}  val {100 * q['d_val']:+.1f}%  test {100 * q['d_test']:+.1f}%"
                  f"  {by}", flush=True)
        records.append({"dataset": ds, "params": params, "dropout": args.dropout, "rl_time": args.rl_time,
                        "rl_s": rl_s, "rl_steps": result.steps, "kept": result.kept, "checks": result.checks,
                        "kept_test_mae": kept_mae, "d_kept": kept_mae / base["test_mae"] - 1,
                        "sft_train_error": train_error,
                        "points": points, "env": env})
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(f"{args.out}.tmp", "w") as f:
            json.dump(records, f, indent=1)
        os.replace(f"{args.out}.tmp", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
