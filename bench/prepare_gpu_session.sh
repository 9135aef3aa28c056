#!/usr/bin/env bash
# Run here (the CPU machine) before a device session: fills the ignored folder .gpu/ with what the device lacks
# (the nvdiffrast wheel; the shipped clip's MediaPipe landmarks, since the device has no detector) and prints
# the `run` call for the device tool. Needs the engine's .venv (python3 install.py).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gpu/' "$(git rev-parse --git-path info/exclude)" 2>/dev/null \
    || echo '/.gpu/' >> "$(git rev-parse --git-path info/exclude)"
mkdir -p .gpu
python3 -m pip download -q --no-deps --only-binary=:all: -d .gpu 'diffrp-nvdiffrast==0.3.3.1'
if [ ! -f .gpu/landmarks.npz ]; then
    .venv/bin/python - <<'PY'
from dlatrack_engine.landmarks import create_detector, detect_clip
from dlatrack_engine.video.reader import read_clip

clip = read_clip("sample_scenes/clips/warm_key_cool_fill/video.mp4")
detect_clip(create_detector("auto"), clip.source_frames(), str(clip.path), count=len(clip.indices)).save(
    ".gpu/landmarks.npz")
PY
fi
ls -la .gpu
echo 'device call: run(command="OUT=$OUT bash bench/gpu_session.sh", carry=[".gpu"], timeout_s=480)'
