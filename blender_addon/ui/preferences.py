"""Add-on preferences: how to reach the engine and where results go."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..blender.scene import MESH_CACHE_ABOVE_FRAMES

ADDON_PACKAGE = __package__.rpartition(".")[0]


class DLATrackPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    engine_mode: EnumProperty(
        name="Engine",
        items=[
            ("LOCAL", "Start a local engine", "Run the engine with the Python made by install.py"),
            ("CONNECT", "Connect", "Connect to a running engine (connection file, or host + port + token)"),
            ("REMOTE", "Remote engine", "An engine on another machine (`dlatrack serve --remote`): its connection "
             "file, or host + port + token + TLS fingerprint; the video and avatar are uploaded, results are "
             "mirrored into the output folder, and no path of this machine is sent"),
        ],
        default="LOCAL",
    )
    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH",
        description="The Python of the engine's virtual environment (<repo>/.venv/bin/python after install.py)",
    )  # fmt: skip
    connection_file: StringProperty(
        name="Connection file", subtype="FILE_PATH",
        description="JSON written by `dlatrack serve` (host, port, token); empty: use host/port/token below",
    )  # fmt: skip
    host: StringProperty(name="Host", default="127.0.0.1")
    port: IntProperty(name="Port", default=0, min=0, max=65535)
    token: StringProperty(name="Token", subtype="PASSWORD")
    tls_fingerprint: StringProperty(
        name="TLS fingerprint",
        description="The engine certificate's `sha256:...` (connection file field tls_fingerprint); pinned",
    )
    output_dir: StringProperty(
        name="Output folder", subtype="DIR_PATH", default="",
        description="Job folders and PC2 caches; empty: the engine's default folder",
    )  # fmt: skip
    mesh_cache_above: IntProperty(
        name="Mesh Cache above", default=MESH_CACHE_ABOVE_FRAMES, min=1,
        description="Clips with more frames than this use a PC2 Mesh Cache instead of per-frame shape keys",
    )  # fmt: skip

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "engine_mode", expand=True)
        if self.engine_mode == "LOCAL":
            layout.prop(self, "engine_python")
        else:
            layout.prop(self, "connection_file")
            row = layout.row()
            row.enabled = not self.connection_file
            row.prop(self, "host")
            row.prop(self, "port")
            layout.prop(self, "token")
            if self.engine_mode == "REMOTE":
                layout.prop(self, "tls_fingerprint")
        layout.prop(self, "output_dir")
        layout.prop(self, "mesh_cache_above")


def get(context: bpy.types.Context) -> DLATrackPreferences | None:
    """The preferences, or None when the add-on is registered without being enabled (tests, scripts)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None
