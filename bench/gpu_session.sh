#!/usr/bin/env bash
# The device session of issue 20, on a lent H100/H200, in well under 8 minutes: the GPU tests (a skip is a
# failure) and the speed table (CUDA torch and CUDA nvdiffrast rows). Prepared here by
# `bash bench/prepare_gpu_session.sh`, which fills the ignored folder .gpu/ and prints the device call.
# On the device, from the repository root:  bash bench/gpu_session.sh   (results under $OUT, or out/gpu_session)
set -uo pipefail
OUT=${OUT:-out/gpu_session}
mkdir -p "$OUT"
CLIP=sample_scenes/clips/warm_key_cool_fill
if ls .gpu/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/*.whl \
        || { echo "gpu_session: installing the carried wheels failed" >&2; exit 2; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
    2>&1 | tee "$OUT/machine.txt"
# 1. The GPU tests: render parity (forward, gradients, antialiasing) and the pipeline on CUDA against the CPU.
DLATRACK_REQUIRE_GPU=1 timeout 300 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/render/test_gpu_parity.py tests/fit/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log"
tests=${PIPESTATUS[0]}
# 2. The speed table on the shipped clip (frames folder: no ffmpeg there; landmarks detected here, carried).
landmarks=()
[ -f .gpu/landmarks.npz ] && landmarks=(--landmarks .gpu/landmarks.npz)
timeout 240 python3 -m bench.bench_speed --rows cuda-torch cuda-nvdiffrast --video "$CLIP/frames" \
    "${landmarks[@]}" --no-preview --repeats 2 2>&1 | tee "$OUT/speed.log"
speed=${PIPESTATUS[0]}
echo "gpu_session: tests exit $tests, speed exit $speed" | tee -a "$OUT/machine.txt"
exit $(( tests != 0 || speed != 0 ))
