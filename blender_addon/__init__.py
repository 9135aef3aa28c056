"""DLATrack: face tracking with deep lighting adaptation (Chen et al., CVPR 2021) inside Blender.

The heavy lifting runs in the dlatrack engine (a separate PyTorch process); this add-on talks to it over a
local socket and writes its results into the scene. Only stdlib + numpy + bpy are used here.
Blender 4.2+ reads `blender_manifest.toml`; `bl_info` serves Blender 3.4-4.1.
"""

from __future__ import annotations

bl_info = {
    "name": "DLATrack",
    "author": "dlatrack contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),  # the Mix shader node arrived in 3.4; tests/blender_gui runs Debian's Blender 3.4.1
    "location": "3D View > Sidebar > DLATrack",
    "description": "Track a face video with a relightable avatar (deep lighting adaptation) and animate it",
    "category": "Animation",
}

_registered: list[type] = []


def register() -> None:
    """Register classes and scene properties; imports bpy-dependent modules only here, so the `io`
    package stays importable (and testable) outside Blender."""
    import bpy

    from .ui import classes, properties

    for cls in classes():
        bpy.utils.register_class(cls)
        _registered.append(cls)
    properties.attach()


def unregister() -> None:
    import bpy

    from .ui import engine, properties, track

    track.stop_all()
    engine.disconnect()  # stops a local engine this session started
    properties.detach()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
