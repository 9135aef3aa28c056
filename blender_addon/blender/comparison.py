"""The job's side-by-side `preview.mp4` as a Video Sequencer strip, lined up with the tracked animation
(source frame i is scene frame i + 1, as the shape keys are)."""

from __future__ import annotations

from pathlib import Path

import bpy

STRIP_NAME = "DLATrack comparison"


def _strips(editor: bpy.types.SequenceEditor) -> bpy.types.bpy_prop_collection:
    return editor.strips if hasattr(editor, "strips") else editor.sequences  # Blender 5.0 renamed it


def load_preview_strip(scene: bpy.types.Scene, path: Path, first_frame: int) -> bpy.types.Sequence:
    """A movie strip of `path` starting at scene frame `first_frame + 1`, replacing the previous one."""
    editor = scene.sequence_editor or scene.sequence_editor_create()
    strips = _strips(editor)
    old = strips.get(STRIP_NAME)
    if old is not None:
        strips.remove(old)
    used = {s.channel for s in strips}
    channel = next(c for c in range(1, 129) if c not in used)
    return strips.new_movie(name=STRIP_NAME, filepath=str(path), channel=channel, frame_start=first_frame + 1)
