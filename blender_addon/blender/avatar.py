"""Import Avatar: the package's mesh as an object with UVs, the neutral shape and the avatar material."""

from __future__ import annotations

from pathlib import Path

import bpy

from ..io.avatar import AvatarMesh, read_avatar_mesh
from . import material, mesh

SOURCE_PROPERTY = "dlatrack_avatar"


def import_avatar(context: bpy.types.Context, package: str | Path | AvatarMesh) -> bpy.types.Object:
    """Build the avatar object in the active collection; remembers the package path on the object."""
    avatar = package if isinstance(package, AvatarMesh) else read_avatar_mesh(package)
    topology = mesh.MeshTopology(avatar.faces, avatar.uv_faces, avatar.uvs, avatar.neutral)
    collection = context.collection or context.scene.collection
    obj = mesh.create_avatar_object(avatar.name, topology, collection)
    obj[SOURCE_PROPERTY] = avatar.source
    material.assign(obj, material.ensure_avatar_material(f"DLATrack {obj.name}"))
    return obj
