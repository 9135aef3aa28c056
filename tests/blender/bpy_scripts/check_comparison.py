"""Inside Blender: Show Comparison loads the job's preview.mp4 as a Video Sequencer strip in step with the
tracked frames, replaces it on a second press, and refuses a job folder without a preview."""

from __future__ import annotations

import bpy

import blender_addon


def _strips(scene: bpy.types.Scene):
    editor = scene.sequence_editor
    return [] if editor is None else list(editor.strips if hasattr(editor, "strips") else editor.sequences)


def main(args: dict) -> dict:
    blender_addon.register()
    scene = bpy.context.scene
    settings = scene.dlatrack
    settings.job_folder = args["empty_job"]
    try:
        refused = sorted(bpy.ops.dlatrack.show_comparison())
    except RuntimeError as exc:  # an operator's ERROR report raises in background mode
        refused = [str(exc)]
    settings.job_folder = args["job"]
    results = [sorted(bpy.ops.dlatrack.show_comparison()) for _ in range(2)]
    strips = _strips(scene)
    out = {
        "refused": refused,
        "results": results,
        "strips": [{"name": s.name, "type": s.type, "path": bpy.path.abspath(s.filepath), "start": s.frame_start,
                    "duration": s.frame_final_duration} for s in strips],
    }
    blender_addon.unregister()
    return out
