#!/usr/bin/env bash
# One GPU check, ~7 minutes on one H100/H200: kernel parity on CUDA (compiled Triton, no
# interpreter), the decode-kernel and RL-step benchmarks, end-to-end decoding throughput
# and a short GPU fit; with MINILM_DIR set (a local copy of the MiniLM backbone), short
# from-scratch vs MiniLM fits on three datasets. Runs from a checkout without installing.
# PARTS picks the steps (default: env parity decode_kernel rl_step decode_e2e); the part
# rl_paired runs benchmarks/rl_paired.py on all seven datasets at once (one process each,
# SFT_TIME s of SFT, then RL_TIME s of RL per arm: the shipped stage and sampled GRPO).
# Writes OUT_DIR/log.txt (every step's console output) and one JSON per benchmark.
# Usage: [MINILM_DIR=path] [PARTS="env rl_paired rl_step"] bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
unset TRITON_INTERPRET
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="$out/log.txt"
step() {   # a shell function named as the command keeps its own time limits
  local name=$1 limit=$2; shift 2; echo "== $name" >> "$log"
  if declare -F "$1" > /dev/null; then "$@" >> "$log" 2>&1; else timeout "$limit" "$@" >> "$log" 2>&1; fi
  echo "== $name rc=$?" >> "$log"; }
parts=" ${PARTS:-env parity decode_kernel rl_step decode_e2e} "
want() { [[ "$parts" == *" $1 "* ]]; }
rl_paired() {   # seven processes share the GPU; per-dataset records are merged into one JSON
  local tmp; tmp=$(mktemp -d); local pids=()
  for ds in $(python -c "from lmreg.datasets import list_datasets; print(*list_datasets())"); do
    timeout "${RL_LIMIT:-330}" python benchmarks/rl_paired.py --datasets "$ds" --device "${DEVICE:-cuda}" --threads 2 \
        --sft-time "${SFT_TIME:-90}" --rl-time "${RL_TIME:-75}" --cache "$tmp/cache" \
        --arm 'default={}' --arm 'grpo={"rl_variant":"grpo"}' --out "$tmp/$ds.json" > "$tmp/$ds.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  cat "$tmp"/*.log
  python -c "import json, sys; json.dump(sum((json.load(open(f)) for f in sys.argv[2:]), []), open(sys.argv[1], 'w'), indent=1)" \
      "$out/rl_paired.json" "$tmp"/*.json && python benchmarks/rl_paired.py --table "$out/rl_paired.json"
}
want env && step env 60 bash -c 'nvidia-smi; python -c "import torch, triton, transformers, peft, sklearn; print(torch.__version__, triton.__version__, transformers.__version__, peft.__version__, sklearn.__version__, torch.cuda.get_device_name())"'
if want rl_paired && want parity; then   # parity checks correctness, so it may share the GPU
  (log="$out/.parity.txt" step parity 150 python -m pytest -q -p no:cacheprovider tests/kernel_parity) &
  step rl_paired 0 rl_paired; wait; cat "$out/.parity.txt" >> "$log"; rm -f "$out/.parity.txt"
else
  want parity && step parity 100 python -m pytest -q -p no:cacheprovider tests/kernel_parity
  want rl_paired && step rl_paired 0 rl_paired
fi
want decode_kernel && step decode_kernel 130 python benchmarks/bench_decode_kernel.py --out "$out/decode_kernel.json"
want rl_step && step rl_step 150 python benchmarks/bench_rl_step.py --device cuda --out "$out/rl_step.json"
want decode_e2e && step decode_e2e 80 python benchmarks/bench_decode.py --device cuda --fit-time 30 --out "$out/decode_e2e.json"
if [ -n "${MINILM_DIR:-}" ]; then
  ds="tweets_engagement movies_json ames_housing"
  step fit_scratch 170 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda --out "$out/fit_scratch.json"
  step fit_minilm 190 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda "backbone=$MINILM_DIR" --out "$out/fit_minilm.json"
fi
grep -E "^== |passed|failed|speedup|R2 |^\\| " "$log" | tail -n 60
