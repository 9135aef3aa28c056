"""The avatar mesh object, built from the avatar topology with `foreach_set` (one call per attribute)."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np


@dataclass
class MeshTopology:
    """What Blender needs of `topology.npz`, with the neutral shape already in the object frame."""

    faces: np.ndarray  # [F, 3] int
    uv_faces: np.ndarray  # [F, 3] int
    uvs: np.ndarray  # [U, 2] float, v up (Blender's convention already)
    neutral: np.ndarray  # [V, 3] float32, Blender object frame


def build_mesh(name: str, topology: MeshTopology) -> bpy.types.Mesh:
    """Triangle mesh with one UV layer "UVMap" and smooth shading."""
    faces = np.ascontiguousarray(topology.faces, dtype=np.int32)
    vertices = np.ascontiguousarray(topology.neutral, dtype=np.float32)
    num_faces = faces.shape[0]
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(vertices.shape[0])
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(3 * num_faces)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(num_faces)
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * num_faces, 3, dtype=np.int32))
    if not bpy.types.MeshPolygon.bl_rna.properties["loop_total"].is_readonly:
        # Blender < 4.0 stores each face's size (derived from the starts since): left at 0, the faces have
        # no corners and drawing the mesh crashes Blender 3.4.
        mesh.polygons.foreach_set("loop_total", np.full(num_faces, 3, dtype=np.int32))
    uv_layer = mesh.uv_layers.new(name="UVMap")
    corner_uvs = np.asarray(topology.uvs, dtype=np.float32)[np.asarray(topology.uv_faces).ravel()]
    uv_layer.data.foreach_set("uv", corner_uvs.ravel())
    mesh.update(calc_edges=True)
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:  # Blender < 4.1
        mesh.polygons.foreach_set("use_smooth", np.ones(num_faces, dtype=bool))
    return mesh


def create_avatar_object(name: str, topology: MeshTopology, collection: bpy.types.Collection) -> bpy.types.Object:
    """A new object holding the avatar mesh, linked into `collection`."""
    obj = bpy.data.objects.new(name, build_mesh(name, topology))
    collection.objects.link(obj)
    return obj


def object_vertices(obj: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> np.ndarray:
    """`[V, 3]` vertex positions of the (evaluated, when a depsgraph is given) mesh, in the object frame."""
    source = obj.evaluated_get(depsgraph) if depsgraph is not None else obj
    mesh = source.to_mesh() if depsgraph is not None else source.data
    try:
        out = np.empty(3 * len(mesh.vertices), dtype=np.float32)
        mesh.vertices.foreach_get("co", out)
    finally:
        if depsgraph is not None:
            source.to_mesh_clear()
    return out.reshape(-1, 3)
