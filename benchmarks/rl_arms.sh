#!/usr/bin/env bash
# SFT-only vs SFT+RL, two budget arms, on the bundled suite (or the datasets named).
#   sft       : max_time = T, no RL
#   rl_same   : max_time = T, RL on (SFT gets 75% of T, RL 25%): same total budget
#   rl_extra  : max_time = T / 0.75, RL on: SFT gets T, RL T/3 on top (budget vs method)
# Extra LMRegressor parameters (reward, variant, rl_config) go in LMREG_RL_PARAMS.
# Usage: bash benchmarks/rl_arms.sh T OUT_DIR [DATASET ...]
set -euo pipefail
T="${1:?usage: rl_arms.sh T OUT_DIR [DATASET ...]}"; out="${2:?}"; shift 2
ds=(); [ $# -gt 0 ] && ds=(--datasets "$@")
mkdir -p "$out"
extra=$(python -c "print(round($T / 0.75, 1))")
run() { python -m lmreg bench --models lmreg --threads "${LMREG_THREADS:-1}" "${ds[@]}" "$@"; }
run --max-time "$T" --out "$out/sft.json"
run --max-time "$T" --param rl_steps=100000 ${LMREG_RL_PARAMS:-} --out "$out/rl_same.json"
run --max-time "$extra" --param rl_steps=100000 ${LMREG_RL_PARAMS:-} --out "$out/rl_extra.json"
python benchmarks/compare.py sft="$out/sft.json" rl_same="$out/rl_same.json" rl_extra="$out/rl_extra.json"
