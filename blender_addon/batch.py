"""Headless DLATrack: track a video with an avatar, write the result into a .blend, optionally render.

    blender -b [scene.blend] --python blender_addon/batch.py -- --video V --avatar A --out scene.blend \
        [--render out/####.png] [--frames START:COUNT] [--key-frames K] [--preset STANDARD] [--mode AUTO]
        [--engine-python .venv/bin/python | --connection-file engine.json] [--job-dir DIR]
        [--job-folder DONE_JOB]   # write an already tracked job folder, no engine needed
        [--lighting-from LIGHTING]  # reuse a lighting from `dlatrack adapt` (or a job folder): skips step 2
        [--remote --connection-file engine.json]  # an engine on another machine: upload, mirror, no paths sent
        [--focal PIXELS]            # the video camera's focal length, when no clip.json/gt.npz 'K' has it

Timers never fire in background mode, so the job is pumped synchronously with the same session and scene
writer the sidebar's modal operator uses. Also runs under a plain Python that has the `bpy` module.
Exit status: 0 when the job completed and the .blend was saved, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Run as a script, this folder would shadow the stdlib with the add-on's `io` package: import the add-on
# as a package from its parent folder instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

log = logging.getLogger("dlatrack.batch")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="blender -b --python blender_addon/batch.py --", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--video", help="video file (or folder of frames) to track")
    parser.add_argument("--avatar", required=True, help="avatar package (folder or .zip)")
    parser.add_argument("--out", required=True, help="the .blend to save")
    parser.add_argument("--render", help="render the frame range with Cycles to this pattern (e.g. out/####.png)")
    parser.add_argument("--render-samples", type=int, default=32, help="Cycles samples of the saved scene")
    parser.add_argument("--frames", default="0:0", help="START:COUNT video frames (COUNT 0: to the end)")
    parser.add_argument("--key-frames", type=int, default=48, help="K, key frames of the lighting adaptation")
    parser.add_argument("--preset", default="FAST", help="quality preset: PREVIEW, FAST or PAPER")
    parser.add_argument("--mode", default="AUTO", choices=["AUTO", "SHAPE_KEYS", "MESH_CACHE"])
    parser.add_argument("--engine-python", help="engine venv Python (default: <repo>/.venv/bin/python)")
    parser.add_argument("--connection-file", help="connect to a running engine instead of starting one")
    parser.add_argument(
        "--job-dir",
        help="job folder for the engine to write (default: next to --out); with --remote, the laptop folder the "
        "results are mirrored into",
    )
    parser.add_argument(
        "--remote", action="store_true",
        help="the engine (--connection-file) runs on another machine: upload the video (chunked, resumable) with "
             "its calibration and the avatar (when the engine lacks it), mirror the results here; no path of this "
             "machine is sent",
    )  # fmt: skip
    parser.add_argument("--focal", type=float, help="focal length in pixels (default: the clip's calibration)")
    parser.add_argument(
        "--mirror", action="store_true",
        help="copy the job folder over the socket even if the engine's disk is visible (remote-engine path)",
    )  # fmt: skip
    parser.add_argument("--job-folder", help="an existing, tracked job folder to write (no engine)")
    parser.add_argument(
        "--lighting-from", metavar="DIR",
        help="reuse this adapted lighting (`dlatrack adapt`'s folder or a job folder; a path on the engine's "
             "machine): step 2 is skipped, so one lighting serves every take of a room",
    )  # fmt: skip
    parser.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="any other engine TrackOptions field, VALUE in JSON (e.g. stride=2, adapt=false); repeatable",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=None, help="give up (and cancel) after this many seconds")
    args = parser.parse_args(argv)
    if not args.video and not args.job_folder:
        parser.error("give --video (track it) or --job-folder (write an existing result)")
    if args.remote and not args.connection_file:
        parser.error("--remote needs the engine's --connection-file (copied from the engine's machine)")
    return args


def extra_options(pairs: list[str]) -> dict[str, object]:
    """`KEY=VALUE` strings -> options; VALUE is JSON when it parses (numbers, booleans), else a string."""
    options: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def script_args() -> list[str]:
    """Arguments after Blender's `--` (or all of them under a plain Python)."""
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]


def _engine(args: argparse.Namespace, work: Path):
    """(client, process or None): connect to the given engine or start a local one."""
    from blender_addon.io.client import EngineClient, start_local_engine

    if args.connection_file:
        return EngineClient.from_connection_file(args.connection_file), None
    python = (
        args.engine_python or os.environ.get("DLATRACK_ENGINE_PYTHON") or str(_HERE.parent / ".venv" / "bin" / "python")
    )
    if not Path(python).exists():
        raise FileNotFoundError(f"engine Python '{python}' not found: pass --engine-python or run install.py")
    connection = work / "engine.json"
    process = start_local_engine(python, connection, ("--state-dir", str(work / "state")))
    return EngineClient.from_connection_file(connection), process


def run(args: argparse.Namespace) -> int:
    import bpy

    import blender_addon
    from blender_addon.blender.avatar import import_avatar
    from blender_addon.blender.scene import WriteOptions, write_result

    if not bpy.data.filepath:
        # No .blend given: start empty (the startup scene's cube would box in the camera at the origin).
        bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    scene = bpy.context.scene
    # The saved scene renders in Cycles as it is (the emission material converges in a few samples).
    scene.render.engine = "CYCLES"
    scene.cycles.samples = args.render_samples
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    avatar = import_avatar(bpy.context, args.avatar)
    settings = scene.dlatrack
    settings.avatar_path, settings.avatar_object = str(Path(args.avatar).resolve()), avatar
    options = WriteOptions(mode=args.mode, cache_dir=str(out.parent))
    status = 0
    if args.job_folder:
        write_result(scene, avatar, args.job_folder, options)
        settings.job_folder = str(Path(args.job_folder).resolve())
        settings.status = "written from job folder"
    else:
        job_dir = (Path(args.job_dir) if args.job_dir else out.with_suffix(".dlatrack")).resolve()
        settings.video_path = str(Path(args.video).resolve())
        status = _track(args, scene, avatar, _request(args), options, job_dir)
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    log.info("saved %s", out)
    if args.render:
        scene.render.filepath = str(Path(args.render).resolve())
        bpy.ops.render.render(animation=True)
        log.info("rendered frames %d-%d to %s", scene.frame_start, scene.frame_end, scene.render.filepath)
    return status


def _request(args: argparse.Namespace) -> dict[str, object]:
    """The track request from the command line, as the sidebar would build it."""
    from blender_addon.io.lightings import with_lighting
    from blender_addon.io.options import track_options

    start, _, count = args.frames.partition(":")
    request = {**track_options(int(start), int(count or 0), args.key_frames, args.preset.upper()),
               **extra_options(args.option)}  # fmt: skip
    if args.focal is not None:
        request["focal"] = args.focal
    lighting = args.lighting_from  # with --remote, a path on the engine's machine: sent as given
    if lighting and not args.remote:
        lighting = str(Path(lighting).resolve())
    return with_lighting(request, lighting)


def _track(args: argparse.Namespace, scene, avatar, request: dict[str, object], options, job_dir: Path) -> int:
    """Track the video on the engine into `job_dir` and the scene; 0 when the job completed, else 1."""
    from blender_addon.blender.tracking import TrackRun
    from blender_addon.io.remote import ensure_avatar

    settings = scene.dlatrack
    with tempfile.TemporaryDirectory(prefix="dlatrack-batch-") as tmp:
        client, process = _engine(args, Path(tmp))
        try:
            info = client.hello()
            log.info("engine %s on %s", info.get("engine_version"), info.get("device"))
            if args.remote:
                avatar_id = ensure_avatar(client, Path(args.avatar).resolve())
                track = TrackRun.submit_remote(scene, avatar, client, avatar_id, settings.video_path, request,
                                               options, mirror_root=str(job_dir))  # fmt: skip
            else:
                avatar_id = client.load_avatar(str(Path(args.avatar).resolve()))
                track = TrackRun.submit(
                    scene, avatar, client, avatar_id, settings.video_path, request, str(job_dir), options,
                    mirror=True if args.mirror else None,
                )
            settings.job_id, settings.job_folder = track.session.job_id, str(track.folder)
            report = track.session.run_blocking(poll_s=0.2, on_report=_progress_log(track), timeout_s=args.timeout)
            track.finish()
        finally:
            if process is not None:
                try:
                    client.shutdown()
                    process.wait(30)
                except Exception:  # an engine that does not stop is terminated: we started it
                    process.terminate()
            else:
                client.close()
    settings.status = report.state.value
    if report.error:
        log.error("job %s: %s (%d frames kept)", track.session.job_id, report.error, track.session.frames_written)
    return 0 if report.state.value == "completed" else 1


def _progress_log(track):
    """A report callback: a line per stage change, else one every 5 s; every warning."""
    last = {"stage": "", "at": 0.0}

    def show(report) -> None:
        for warning in report.warnings:
            log.warning("%s", warning)
        stage = report.text.split(" ")[0]
        if stage != last["stage"] or time.monotonic() - last["at"] > 5.0:
            log.info("%s (%d frames written)", report.text, track.session.frames_written)
            last.update(stage=stage, at=time.monotonic())

    return show


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="dlatrack: %(message)s")
    try:
        return run(parse_args(script_args()))
    except Exception as exc:  # the batch's user reads this line, not a traceback
        log.error("%s: %s", type(exc).__name__, exc)
        log.debug("details", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
