"""Per-scene settings shown in the sidebar (what to track, how) and the live job status."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..io.options import PRESETS


def _relit_changed(self: DLATrackSceneSettings, context: bpy.types.Context) -> None:
    from ..blender import material

    avatar_material = material.avatar_material(self.avatar_object)
    if avatar_material is not None:
        material.set_relit(avatar_material, self.show_relit)


class DLATrackLighting(bpy.types.PropertyGroup):
    """A lighting adapted by Adapt Lighting, stored by name in the scene (`name` is the list's label)."""

    folder: StringProperty(name="Folder", description="The lighting folder on the engine's machine")
    video: StringProperty(name="Video", description="The video it was adapted to")
    model: StringProperty(name="Model", default="G")
    key_frames: StringProperty(name="Key frames", description="Video frames the lighting was adapted on")
    preview: PointerProperty(type=bpy.types.Image, name="Preview",
                             description="A key frame beside the avatar relit with this lighting")  # fmt: skip


class DLATrackSceneSettings(bpy.types.PropertyGroup):
    avatar_path: StringProperty(name="Avatar", subtype="FILE_PATH", description="Avatar package (folder or .zip)")
    avatar_object: PointerProperty(name="Avatar object", type=bpy.types.Object, description="The imported avatar mesh")
    video_path: StringProperty(name="Video", subtype="FILE_PATH", description="Video file (or a folder of frames)")
    frame_start: IntProperty(name="First frame", default=0, min=0, description="First video frame to track (0-based)")
    frame_count: IntProperty(name="Frames", default=0, min=0, description="How many frames to track (0: to the end)")
    key_frames: IntProperty(
        name="K", default=48, min=1, max=1024,
        description="Key frames for the lighting adaptation (the paper finds K = 48 enough)",
    )  # fmt: skip
    preset: EnumProperty(
        name="Quality",
        items=[(key, spec["label"], spec["description"]) for key, spec in PRESETS.items()],
        default="FAST",
    )  # fmt: skip
    write_mode: EnumProperty(
        name="Motion",
        items=[
            ("AUTO", "Auto", "Shape keys for short clips, a PC2 Mesh Cache for long ones (see preferences)"),
            ("SHAPE_KEYS", "Shape keys", "One shape key per frame, keyed 0-1-0"),
            ("MESH_CACHE", "Mesh Cache", "A PC2 file played by a Mesh Cache modifier"),
        ],
        default="AUTO",
    )  # fmt: skip
    show_relit: BoolProperty(
        name="Relit", default=True, update=_relit_changed,
        description="Show the relit texture (the video's lighting) instead of the fully-lit one",
    )  # fmt: skip
    lightings: CollectionProperty(type=DLATrackLighting, name="Lightings")
    lighting_index: IntProperty(name="Lighting", default=0, min=0)
    lighting_name: StringProperty(name="Name", description="Name of the next adapted lighting (default: the video's)")
    lighting_mode: EnumProperty(
        name="Track with",
        items=[
            ("ADAPT", "Adapt anew", "Track Video adapts the lighting to this video (step 2)"),
            ("STORED", "Stored lighting", "Track Video reuses the selected stored lighting and skips step 2"),
        ],
        default="ADAPT",
    )  # fmt: skip
    # Live status, written by the operators (not saved meaningfully across sessions).
    job_id: StringProperty(name="Job")
    job_folder: StringProperty(name="Job folder", subtype="DIR_PATH")
    status: StringProperty(name="Status")
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    running: BoolProperty(name="Running")


def attach() -> None:
    bpy.types.Scene.dlatrack = PointerProperty(type=DLATrackSceneSettings)


def detach() -> None:
    if hasattr(bpy.types.Scene, "dlatrack"):
        del bpy.types.Scene.dlatrack
