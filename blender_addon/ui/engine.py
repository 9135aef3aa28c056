"""The engine connection for this Blender session: start a local engine, connect, show status, stop.

One connection per Blender session lives here (module state, not scene data: sockets cannot be saved in
a .blend). Operators report the engine's own error messages.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bpy

from . import preferences

log = logging.getLogger(__name__)

_state: dict[str, Any] = {"client": None, "info": {}, "avatars": {}, "process": None, "remote": False,
                          "launch": None, "launch_error": ""}


def client() -> Any | None:
    return _state["client"]


def info() -> dict[str, Any]:
    return _state["info"]


def _default_connection_file() -> Path:
    return Path(bpy.app.tempdir or "/tmp") / "dlatrack-engine.json"


def launch() -> Any | None:
    """The local engine on its way up (io.engine_launch.EngineLaunch), or None."""
    return _state["launch"]


def launch_error() -> str:
    return _state["launch_error"]


def _engine_python(context: bpy.types.Context) -> str:
    prefs = preferences.get(context)
    python = bpy.path.abspath(prefs.engine_python) if prefs and prefs.engine_python else ""
    if not python:
        raise RuntimeError("set 'Engine Python' in the DLATrack preferences (the .venv Python made by install.py)")
    return python


def _local_mode(context: bpy.types.Context) -> bool:
    prefs = preferences.get(context)
    return (prefs.engine_mode if prefs else "LOCAL") == "LOCAL"


def start_local(context: bpy.types.Context) -> None:
    """Start the local engine without waiting: a timer polls it and connects once it is up, so the UI stays
    live for the seconds the engine takes to import torch (the sidebar shows 'starting')."""
    from ..io.engine_launch import EngineLaunch

    if _state["client"] is not None or _state["launch"] is not None:
        return
    _state["launch"] = EngineLaunch(_engine_python(context), _default_connection_file())
    _state["launch_error"] = ""
    bpy.app.timers.register(_pump_launch, first_interval=0.2)


def _redraw_sidebars() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _pump_launch() -> float | None:
    """Timer: poll the launch; adopt the engine when it is ready, keep its error when it failed."""
    from ..io import client as client_mod
    from ..io.engine_launch import READY, STARTING

    pending = _state["launch"]
    if pending is None:
        return None
    state = pending.poll()
    _redraw_sidebars()
    if state == STARTING:
        return 0.25
    _state["launch"] = None
    if state == READY:
        try:
            adopt(client_mod.EngineClient.from_connection_file(pending.connection_file))
            _state["process"] = pending.process
            return None
        except (OSError, ConnectionError, RuntimeError) as exc:
            pending.process.terminate()
            pending.error = str(exc)
    _state["launch_error"] = pending.error
    log.warning("DLATrack engine did not start: %s", pending.error)
    return None


def connect(context: bpy.types.Context) -> Any:
    """The connected client, connecting according to the preferences. In Blender's UI a local engine is
    started in the background (`start_local`) and this raises until it is up; headless, it waits for it."""
    from ..io import client as client_mod

    if _state["client"] is not None:
        return _state["client"]
    prefs = preferences.get(context)
    if _local_mode(context):
        if not bpy.app.background:
            start_local(context)
            raise RuntimeError(f"the local engine is starting ({_state['launch'].elapsed_s:.0f} s); "
                               "try again once the sidebar shows it connected")
        connection_file = _default_connection_file()
        _state["process"] = client_mod.start_local_engine(_engine_python(context), connection_file)
        engine = client_mod.EngineClient.from_connection_file(connection_file)
    elif prefs and prefs.connection_file:
        engine = client_mod.EngineClient.from_connection_file(bpy.path.abspath(prefs.connection_file))
    else:
        if not prefs or not prefs.port:
            raise RuntimeError("set a connection file, or host + port + token, in the DLATrack preferences")
        fingerprint = prefs.tls_fingerprint.strip() or None
        engine = client_mod.EngineClient(prefs.host, prefs.port, prefs.token, fingerprint=fingerprint)
    return adopt(engine, remote=prefs is not None and prefs.engine_mode == "REMOTE")


def remote() -> bool:
    """The connected engine runs on another machine (preferences: Remote engine): inputs are uploaded,
    results mirrored, no path of this machine is sent."""
    return bool(_state["remote"])


def adopt(engine: Any, remote: bool = False) -> Any:
    """Use an already-connected client (batch mode starts its own)."""
    _state["client"], _state["remote"] = engine, remote
    _state["info"] = dict(engine.hello() or {})
    _state["avatars"] = {}
    return engine


def disconnect(shutdown: bool | None = None) -> None:
    """Drop the connection; `shutdown` (default: only an engine this session started) also stops it."""
    if _state["launch"] is not None:
        _state["launch"].cancel()
        _state["launch"] = None
    if shutdown is None:
        shutdown = _state["process"] is not None
    engine, process = _state["client"], _state["process"]
    _state.update(client=None, info={}, avatars={}, process=None, remote=False)
    if engine is not None:
        try:
            if shutdown:
                engine.shutdown()
            else:
                engine.close()
        except (OSError, ConnectionError, RuntimeError) as exc:
            log.info("engine connection closed with: %s", exc)
    if process is not None and shutdown:
        try:
            process.wait(timeout=10)
        except Exception:  # still running after a shutdown request: stop the process we started
            process.terminate()


def avatar_package(settings: Any) -> str:
    """The avatar package path: the sidebar's, else the one the avatar object was imported from."""
    path = settings.avatar_path or (settings.avatar_object or {}).get("dlatrack_avatar", "")
    if not path:
        raise RuntimeError("choose the avatar package (the engine needs its weights)")
    return bpy.path.abspath(path)


def avatar_id(path: str) -> str:
    """Load the avatar package on the engine once per session (a remote engine gets it uploaded, unless it
    has the same content); returns its id there."""
    from ..io.remote import ensure_avatar

    engine = _state["client"]
    key = str(Path(path).resolve())
    if key not in _state["avatars"]:
        _state["avatars"][key] = ensure_avatar(engine, key) if remote() else engine.load_avatar(key)
    return _state["avatars"][key]


class DLATRACK_OT_engine_connect(bpy.types.Operator):
    """Start a local engine or connect to a running one (see the add-on preferences)"""

    bl_idname = "dlatrack.engine_connect"
    bl_label = "Start / Connect Engine"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            if _local_mode(context) and not bpy.app.background:
                start_local(context)
                self.report({"INFO"}, "DLATrack: starting the local engine (the sidebar shows when it is ready)")
                return {"FINISHED"}
            connect(context)
        except Exception as exc:  # the engine's message is what the user needs to see
            self.report({"ERROR"}, f"DLATrack engine: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"DLATrack engine {info().get('engine_version', '?')} on {info().get('device', '?')}")
        return {"FINISHED"}


class DLATRACK_OT_engine_stop(bpy.types.Operator):
    """Stop the engine this session started, or one still starting (or just disconnect from a remote one)"""

    bl_idname = "dlatrack.engine_stop"
    bl_label = "Stop Engine"

    def execute(self, context: bpy.types.Context) -> set[str]:
        disconnect()
        return {"FINISHED"}


CLASSES = [DLATRACK_OT_engine_connect, DLATRACK_OT_engine_stop]
