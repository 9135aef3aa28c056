"""Blender glue for the sample generator: render settings, the subject, cameras, lights, EXR renders.

Runs only inside Blender's Python (bpy 5.0). All geometry arrives as numpy arrays in the scene frame of
`rigs` (Y up); this module alone knows Blender's Z-up frame: `(x, y, z) -> (x, -z, y)` (conventions.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from .head_parts import Part
from .rigs import Camera

log = logging.getLogger(__name__)

TO_BLENDER = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # scene (Y up) -> Blender (Z up)
FACE_PASS_INDEX = 1


def reset_scene(width: int, height: int, samples: int, denoise: bool, seed: int, threads: int = 0) -> None:
    """Empty factory scene with Cycles on the CPU and multi-layer uncompressed EXR output."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = samples
    cycles.use_adaptive_sampling = False
    cycles.use_denoising = denoise
    if denoise:
        cycles.denoiser = "OPENIMAGEDENOISE"
    cycles.seed = seed
    cycles.max_bounces = 3
    cycles.diffuse_bounces = 1
    cycles.glossy_bounces = 1
    cycles.transmission_bounces = 0
    cycles.transparent_max_bounces = 2
    cycles.caustics_reflective = False
    cycles.caustics_refractive = False
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    if threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = threads
    settings = scene.render.image_settings
    settings.media_type = "MULTI_LAYER_IMAGE"
    settings.exr_codec = "NONE"
    settings.color_depth = "32"
    layer = scene.view_layers[0]
    layer.use_pass_object_index = True
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.0
    scene.world = world


def set_world_colour(colour, strength: float, backdrop=None) -> None:
    """Ambient light `colour * strength`; camera rays see `backdrop` instead (a wall, at no tracing cost)."""
    tree = bpy.context.scene.world.node_tree
    background = tree.nodes["Background"]
    background.inputs["Color"].default_value = (*colour, 1.0)
    background.inputs["Strength"].default_value = strength
    if backdrop is None:
        return
    wall = tree.nodes.new("ShaderNodeBackground")
    wall.inputs["Color"].default_value = (*backdrop, 1.0)
    wall.inputs["Strength"].default_value = 1.0
    path = tree.nodes.new("ShaderNodeLightPath")
    mix = tree.nodes.new("ShaderNodeMixShader")
    output = tree.nodes["World Output"]
    tree.links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    tree.links.new(background.outputs["Background"], mix.inputs[1])
    tree.links.new(wall.outputs["Background"], mix.inputs[2])
    tree.links.new(mix.outputs["Shader"], output.inputs["Surface"])


def _mesh_object(name: str, vertices: np.ndarray, faces: np.ndarray, parent=None):
    mesh = bpy.data.meshes.new(name)
    verts_b = vertices @ TO_BLENDER.T
    mesh.from_pydata(verts_b.tolist(), [], faces.tolist())
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    if parent is not None:
        obj.parent = parent
    for poly in mesh.polygons:
        poly.use_smooth = True
    return obj


def _vertex_colour_material(name: str, roughness: float):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes["Principled BSDF"]
    attr = nodes.new("ShaderNodeVertexColor")
    attr.layer_name = "colour"
    mat.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


def add_part(part: Part, parent=None):
    """A closed untracked mesh with per-vertex colours (linear RGB)."""
    obj = _mesh_object(part.name, part.vertices, part.faces, parent)
    mesh = obj.data
    attr = mesh.color_attributes.new("colour", "FLOAT_COLOR", "POINT")
    rgba = np.concatenate([part.colours, np.ones((len(part.colours), 1))], axis=1).astype(np.float32)
    attr.data.foreach_set("color", rgba.ravel())
    mesh.materials.append(_vertex_colour_material(f"{part.name}_mat", part.roughness))
    return obj


def _image(path: Path, colourspace: str):
    image = bpy.data.images.load(str(path), check_existing=False)
    image.colorspace_settings.name = colourspace
    return image


def add_face(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, textures: dict[str, Path], parent=None):
    """The tracked face mesh with UVs and the albedo / roughness / specular image textures."""
    obj = _mesh_object("face", vertices, faces, parent)
    obj.pass_index = FACE_PASS_INDEX
    mesh = obj.data
    uv_layer = mesh.uv_layers.new(name="UVMap")
    loop_vertex = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", loop_vertex)
    uv_layer.data.foreach_set("uv", uvs[loop_vertex].astype(np.float32).ravel())
    mat = bpy.data.materials.new("skin")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    for key, socket, space in (
        ("albedo", "Base Color", "sRGB"),
        ("roughness", "Roughness", "Non-Color"),
        ("specular", "Specular IOR Level", "Non-Color"),
    ):
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = _image(textures[key], space)
        tex.interpolation = "Linear"
        links.new(tex.outputs["Color"], bsdf.inputs[socket])
    mesh.materials.append(mat)
    return obj


def set_mesh_vertices(obj, vertices: np.ndarray) -> None:
    """Replace a mesh's vertex positions (scene frame, metres) in place, topology unchanged."""
    verts_b = (vertices @ TO_BLENDER.T).astype(np.float32)
    obj.data.vertices.foreach_set("co", verts_b.ravel())
    obj.data.update()


def add_head_root():
    root = bpy.data.objects.new("head", None)
    bpy.context.scene.collection.objects.link(root)
    return root


def set_pose(obj, rotation: np.ndarray, translation: np.ndarray, local_is_scene: bool = True) -> None:
    """Object transform for `x_scene = R x_local + t`.

    Meshes store their vertices converted from the scene frame, so their local frame is the scene frame
    (`local_is_scene`); cameras and lights have Blender's own local axes, which R maps straight to the scene.
    """
    matrix = np.eye(4)
    matrix[:3, :3] = TO_BLENDER @ rotation @ (TO_BLENDER.T if local_is_scene else np.eye(3))
    matrix[:3, 3] = TO_BLENDER @ translation
    obj.matrix_world = Matrix(matrix.tolist())


def add_camera(camera: Camera):
    """A Blender camera matching OpenCV intrinsics K (square pixels) and extrinsics R, t."""
    data = bpy.data.cameras.new(camera.name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = camera.K[0, 0] * 36.0 / camera.width
    data.shift_x = (camera.width / 2 - camera.K[0, 2]) / camera.width
    data.shift_y = (camera.K[1, 2] - camera.height / 2) / camera.width
    data.clip_start, data.clip_end = 0.05, 50.0
    obj = bpy.data.objects.new(camera.name, data)
    bpy.context.scene.collection.objects.link(obj)
    update_camera(obj, camera)
    return obj


def update_camera(obj, camera: Camera) -> None:
    cam_to_scene = camera.R.T @ np.diag([1.0, -1.0, -1.0])  # Blender camera axes: x right, y up, -z forward
    set_pose(obj, cam_to_scene, camera.centre, local_is_scene=False)


def add_light(name: str, kind: str, position, power: float, colour=(1.0, 1.0, 1.0), radius: float = 0.02,
              lightgroup: str = "", target=None, size: float = 0.3, angle: float = 0.01):  # fmt: skip
    """A point/area/sun/spot light in the scene frame; area, spot and sun lights aim at `target`."""
    data = bpy.data.lights.new(name, kind)
    data.energy = power
    data.color = colour
    if kind == "POINT" or kind == "SPOT":
        data.shadow_soft_size = radius
    if kind == "AREA":
        data.size = size
    if kind == "SUN":
        data.angle = angle
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    place_light(obj, position, target)
    if lightgroup:
        obj.lightgroup = lightgroup
    return obj


def update_light(obj, position, power: float, colour, target=None) -> None:
    """Move / dim / recolour a light made by `add_light` (time-varying set-ups, issue 18)."""
    obj.data.energy = power
    obj.data.color = colour
    place_light(obj, position, target)


def place_light(obj, position, target=None) -> None:
    """Put a light at `position` (scene frame), aimed at `target` when given."""
    position = np.asarray(position, float)
    rotation = np.eye(3)
    if target is not None:
        forward = np.asarray(target, float) - position
        forward /= np.linalg.norm(forward)
        up = np.array([0.0, 1.0, 0.0]) if abs(forward[1]) < 0.95 else np.array([1.0, 0.0, 0.0])
        x = np.cross(up, -forward)
        x /= np.linalg.norm(x)
        rotation = np.stack([x, np.cross(-forward, x), -forward], axis=1)  # lights shine along local -Z
    set_pose(obj, rotation, position, local_is_scene=False)


def add_light_groups(names: list[str]) -> None:
    layer = bpy.context.scene.view_layers[0]
    for name in names:
        layer.lightgroups.add(name=name)


def render_exr(camera_obj, path: Path) -> Path:
    """Render the active scene through `camera_obj` into a multi-layer EXR at `path`."""
    scene = bpy.context.scene
    scene.camera = camera_obj
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    if not path.exists():
        raise RuntimeError(f"Cycles render did not write {path}")
    return path
