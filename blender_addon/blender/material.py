"""The avatar material: fully-lit and relit textures as image sequences, with a relit/fully-lit switch.

The engine's textures already contain the lighting (Eq. 2: T_v = T̂_v ⊙ g_v + b_v for the relit one), so
the material emits them unshaded: Cycles and Eevee then both reproduce the tracked appearance exactly
(with the "Standard" view transform). The switch is a Value node named "Relit" (1 = relit texture,
0 = fully-lit DAM texture), which the sidebar exposes and which can be keyframed.
"""

from __future__ import annotations

from pathlib import Path

import bpy

SWITCH_NODE = "Relit"
NODE_FOR_KIND = {"full": "Fully-lit texture", "relit": "Relit texture"}


def ensure_avatar_material(name: str) -> bpy.types.Material:
    """Create the node tree once: two image nodes -> Mix(Relit) -> Emission -> Output."""
    material = bpy.data.materials.get(name)
    if material is not None and material.node_tree is not None and SWITCH_NODE in material.node_tree.nodes:
        return material
    material = material or bpy.data.materials.new(name)
    if hasattr(material, "use_nodes") and not material.use_nodes:
        material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    nodes, links = tree.nodes, tree.links
    uv = nodes.new("ShaderNodeUVMap")
    uv.uv_map = "UVMap"
    uv.location = (-900, 0)
    images = {}
    for row, (kind, label) in enumerate(NODE_FOR_KIND.items()):
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = label
        node.interpolation = "Linear"
        node.extension = "EXTEND"
        node.location = (-600, 150 - 320 * row)
        links.new(uv.outputs["UV"], node.inputs["Vector"])
        images[kind] = node
    switch = nodes.new("ShaderNodeValue")
    switch.name = switch.label = SWITCH_NODE
    switch.outputs[0].default_value = 1.0
    switch.location = (-600, 350)
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MIX"
    mix.location = (-250, 100)
    # ShaderNodeMix has float/vector/colour sockets under the same names; pick the RGBA ones by type.
    colour_inputs = [s for s in mix.inputs if s.type == "RGBA"]
    colour_output = next(s for s in mix.outputs if s.type == "RGBA")
    links.new(switch.outputs[0], mix.inputs["Factor"])
    links.new(images["full"].outputs["Color"], colour_inputs[0])
    links.new(images["relit"].outputs["Color"], colour_inputs[1])
    colour_inputs[0].default_value = colour_inputs[1].default_value = (0.6, 0.6, 0.6, 1.0)
    emission = nodes.new("ShaderNodeEmission")
    emission.location = (0, 100)
    links.new(colour_output, emission.inputs["Color"])
    output = nodes.new("ShaderNodeOutputMaterial")
    output.location = (250, 100)
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return material


def set_texture_sequence(
    material: bpy.types.Material, kind: str, first_png: str | Path, image_user: dict[str, int]
) -> bpy.types.Image:
    """Point the `kind` ("full"/"relit") node at a numbered PNG sequence, auto-refreshing with the frame.

    `image_user` holds frame_start / frame_offset / frame_duration (`io.result.sequence_image_user`).
    Swapping sequences (relighting for another viewpoint) replaces the node's image in place.
    """
    node = material.node_tree.nodes[NODE_FOR_KIND[kind]]
    path = str(Path(first_png).resolve())
    image = bpy.data.images.load(path, check_existing=True)
    image.source = "SEQUENCE"
    image.colorspace_settings.name = "sRGB"
    image.name = f"DLATrack {kind} ({Path(first_png).parent.parent.name})"
    node.image = image
    user = node.image_user
    user.frame_start = int(image_user["frame_start"])
    user.frame_offset = int(image_user["frame_offset"])
    user.frame_duration = int(image_user["frame_duration"])
    user.use_auto_refresh = True
    user.use_cyclic = False
    return image


def set_relit(material: bpy.types.Material, relit: bool) -> None:
    """Switch between the relit (True) and the fully-lit (False) texture."""
    material.node_tree.nodes[SWITCH_NODE].outputs[0].default_value = 1.0 if relit else 0.0


def assign(obj: bpy.types.Object, material: bpy.types.Material) -> None:
    if material.name not in obj.data.materials:
        obj.data.materials.clear()
        obj.data.materials.append(material)


def avatar_material(obj: bpy.types.Object | None) -> bpy.types.Material | None:
    """The object's DLATrack material (the one with the relit switch), if it has one."""
    mat = obj.active_material if obj is not None else None
    if mat is None or mat.node_tree is None or SWITCH_NODE not in mat.node_tree.nodes:
        return None
    return mat
