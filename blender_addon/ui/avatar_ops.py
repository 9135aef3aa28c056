"""Import Avatar: builds the avatar mesh (UVs, neutral shape, material) from the chosen package."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..blender.avatar import import_avatar
from ..io.avatar import avatar_mesh_from_arrays
from . import engine


class DLATRACK_OT_import_avatar(bpy.types.Operator):
    """Build the avatar's mesh object (UVs, neutral shape, material) from the avatar package"""

    bl_idname = "dlatrack.import_avatar"
    bl_label = "Import Avatar"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set here)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = context.scene.dlatrack
        path = bpy.path.abspath(settings.avatar_path)
        if not path:
            self.report({"ERROR"}, "choose an avatar package first")
            return {"CANCELLED"}
        try:
            if Path(path).exists() or engine.client() is None:
                obj = import_avatar(context, path)
            else:  # not on this machine: the connected engine may have it (an engine elsewhere)
                client = engine.client()
                reply = client.avatar_topology(engine.avatar_id(path))
                mesh = avatar_mesh_from_arrays(reply, str(reply.get("name") or Path(path).stem),
                                               reply.get("texture_size"), path, f"engine avatar '{path}'")  # fmt: skip
                obj = import_avatar(context, mesh)
        except Exception as exc:  # package errors name the file and field; engine errors carry its message
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings.avatar_object = obj
        for other in context.view_layer.objects.selected:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        self.report({"INFO"}, f"imported avatar '{obj.name}' ({len(obj.data.vertices)} vertices)")
        return {"FINISHED"}


CLASSES = [DLATRACK_OT_import_avatar]
