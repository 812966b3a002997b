#!/usr/bin/env bash
# One GPU check, ~7 minutes on one H100/H200: kernel parity on CUDA (compiled Triton, no
# interpreter), the decode-kernel and RL-step benchmarks, end-to-end decoding throughput
# and a short GPU fit; with MINILM_DIR set (a local copy of the MiniLM backbone), short
# from-scratch vs MiniLM fits on three datasets. Runs from a checkout without installing.
# Usage: [MINILM_DIR=path] bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
unset TRITON_INTERPRET
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ nvidia-smi; python -c "import torch, triton, transformers, peft; print(torch.__version__, triton.__version__, transformers.__version__, peft.__version__, torch.cuda.get_device_name())"; } > "$out/env.txt" 2>&1
timeout 100 python -m pytest -q -p no:cacheprovider tests/kernels > "$out/parity.txt" 2>&1; echo "parity rc=$?" >> "$out/parity.txt"
timeout 130 python benchmarks/bench_decode_kernel.py --out "$out/decode_kernel.json" > "$out/decode_kernel.log" 2>&1; echo "kernel bench rc=$?" >> "$out/decode_kernel.log"
timeout 100 python benchmarks/bench_rl_step.py --device cuda --out "$out/rl_step.json" > "$out/rl_step.log" 2>&1; echo "rl bench rc=$?" >> "$out/rl_step.log"
timeout 80 python benchmarks/bench_decode.py --device cuda --fit-time 30 --out "$out/decode_e2e.json" > "$out/decode_e2e.log" 2>&1; echo "e2e rc=$?" >> "$out/decode_e2e.log"
if [ -n "${MINILM_DIR:-}" ]; then
  ds="tweets_engagement movies_json ames_housing"
  { timeout 170 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda --out "$out/fit_scratch.json"; echo "scratch rc=$?"
    timeout 190 python -m lmreg bench --models lmreg --datasets $ds --max-time 45 --threads 4 \
      --param device=cuda "backbone=$MINILM_DIR" --out "$out/fit_minilm.json"; echo "minilm rc=$?"; } > "$out/fits.log" 2>&1
fi
tail -n 4 "$out"/*.txt "$out"/*.log
