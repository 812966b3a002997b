#!/usr/bin/env bash
# One GPU check, <= 8 minutes on one H100: kernel parity on CUDA (compiled Triton, no
# interpreter), the decode-kernel benchmark, end-to-end decoding throughput and a short
# GPU fit. Usage: bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
unset TRITON_INTERPRET
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__, torch.cuda.get_device_name())" > "$out/versions.txt" 2>&1
timeout 120 python -m pytest -q -p no:cacheprovider tests/kernels > "$out/parity.txt" 2>&1; echo "parity rc=$?" >> "$out/parity.txt"
timeout 240 python benchmarks/bench_decode_kernel.py --out "$out/decode_kernel.json" > "$out/decode_kernel.log" 2>&1; echo "kernel bench rc=$?" >> "$out/decode_kernel.log"
timeout 90 python benchmarks/bench_decode.py --device cuda --fit-time 30 --out "$out/decode_e2e.json" > "$out/decode_e2e.log" 2>&1; echo "e2e rc=$?" >> "$out/decode_e2e.log"
tail -n 3 "$out"/*.txt "$out"/*.log
