"""*Show Comparison*: the last job's preview.mp4 (input, tracked mesh, relit avatar, novel view) as a Video
Sequencer strip, in step with the tracked animation."""

from __future__ import annotations

import bpy

from ..blender.comparison import load_preview_strip
from ..io.job_summary import JobSummary


class DLATRACK_OT_show_comparison(bpy.types.Operator):
    """Load the last job's side-by-side preview video into the Video Sequencer"""

    bl_idname = "dlatrack.show_comparison"
    bl_label = "Show Comparison"

    def execute(self, context: bpy.types.Context) -> set[str]:
        folder = bpy.path.abspath(context.scene.dlatrack.job_folder)
        summary = JobSummary.from_folder(folder) if folder else None
        if summary is None or summary.preview is None:
            self.report({"ERROR"}, f"DLATrack: no preview.mp4 in the job folder '{folder}' (track a video first; "
                                   "with a remote engine it is mirrored once the job is done)")
            return {"CANCELLED"}
        strip = load_preview_strip(context.scene, summary.preview, summary.first_frame)
        self.report({"INFO"}, f"DLATrack: {summary.preview.name} in the Video Sequencer, channel {strip.channel}, "
                              f"from frame {strip.frame_start:.0f} (Video Editing workspace to play it)")
        return {"FINISHED"}


CLASSES = [DLATRACK_OT_show_comparison]
