#!/usr/bin/env bash
# The GPU checks, in one short run on a CUDA machine (torch, transformers, accelerate installed;
# `pip install --no-deps -e .` for the package). Writes everything under ${OUT:-gpu_check}/.
#
#   bash scripts/gpu_check.sh            # ~5 minutes on one H100-class GPU
#
# 1. the GPU tests (CUDA OOM back-off on a memory-capped GPU, batched = one-at-a-time);
# 2. `harness eval` in float32 and bfloat16 on a randomly initialised GPT-NeoX with
#    Pythia-410m's dimensions (weights do not matter for the code path; the tokenizer is the
#    pico family's character tokenizer, so no download), with wall time and peak GPU memory;
# 3. the GPU section of the benchmark: tokens/s, MFU and peak GPU memory of log-likelihood
#    scoring on Pythia-160m/410m/1.4b shapes in float32 and bfloat16 (ours; lm-eval in bf16),
#    and the bf16 drift (|delta log-prob| and greedy flips against float32).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

"$PY" -m pytest -q -m gpu tests 2>&1 | tee "$OUT/pytest_gpu.txt"

"$PY" scripts/bench.py --build-model pythia-410m --tokenizer families/pico/pico-16k/step0 \
    --into "$OUT/random-410m"
for dtype in float32 bfloat16; do
    /usr/bin/time -v "$PY" -m harness eval --model "$OUT/random-410m" --dtype "$dtype" \
        --tasks emoji_movie,periodic_elements/subtask_0,arithmetic/2_digit_addition --limit 100 \
        --out "$OUT/results-$dtype" 2>&1 | tee "$OUT/eval-$dtype.txt"
    "$PY" - "$OUT/results-$dtype" <<'EOF' | tee -a "$OUT/eval-$dtype.txt"
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("manifest.json")):
    session = json.loads(path.read_text())["sessions"][-1]
    print(path.parent.relative_to(sys.argv[1]), "wall_s", session["wall_s"],
          "peak_gpu_mb", session.get("peak_gpu_mb"))
EOF
done

# lm-eval (pip install "lm-eval>=0.4.13,<0.5", from wheels where offline) runs beside ours;
# the pico tokenizer again keeps the GGUF reader (gguf) off the GPU machine.
"$PY" scripts/bench.py --model pico-942k --workloads gpu --out "$OUT/bench" 2>&1 | tee "$OUT/bench.txt"
