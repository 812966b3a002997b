#!/usr/bin/env bash
# One GPU check, ~7 minutes on one H100/H200: kernel parity on CUDA (compiled Triton, no
# interpreter), the decode-kernel and RL-step benchmarks, end-to-end decoding throughput
# and a short GPU fit; with MINILM_DIR set (a local copy of the MiniLM backbone), short
# from-scratch vs MiniLM fits on three datasets. Runs from a checkout without installing.
# Writes OUT_DIR/log.txt (every step's console output) and one JSON per benchmark.
# Usage: [MINILM_DIR=path] bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
unset TRITON_INTERPRET
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="$out/log.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name" >> "$log"
         timeout "$limit" "$@" >> "$log" 2>&1; echo "== $name rc=$?" >> "$log"; }
step env 60 bash -c 'nvidia-smi; python -c "import torch, triton, transformers, peft; print(torch.__version__, triton.__version__, transformers.__version__, peft.__version__, torch.cuda.get_device_name())"'
step parity 100 python -m pytest -q -p no:cacheprovider tests/kernel_parity
step decode_kernel 130 python benchmarks/bench_decode_kernel.py --out "$out/decode_kernel.json"
step rl_step 100 python benchmarks/bench_rl_step.py --device cuda --out "$out/rl_step.json"
step decode_e2e 80 python benchmarks/bench_decode.py --device cuda --fit-time 30 --out "$out/decode_e2e.json"
if [ -n "${MINILM_DIR:-}" ]; then
  ds="tweets_engagement movies_json ames_housing"
  step fit_scratch 170 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda --out "$out/fit_scratch.json"
  step fit_minilm 190 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda "backbone=$MINILM_DIR" --out "$out/fit_minilm.json"
fi
grep -E "^== |passed|failed|speedup|R2 " "$log" | tail -n 40
