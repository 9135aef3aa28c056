"""Write a track result into the scene: camera, head empty + pose keys, avatar motion, textures, timing.

One `SceneWriter` serves the modal operator (frames arrive a few at a time), the headless batch script
and the tests (everything at once), so all three produce the same scene.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from ..io import pc2
from ..io.result import TrackFrames, TrackResult, scene_frame, sequence_image_user, shape_key_name
from . import camera, material, meshcache, pose, shapekeys

log = logging.getLogger(__name__)

MODES = ("AUTO", "SHAPE_KEYS", "MESH_CACHE")
# Above this many frames AUTO uses the Mesh Cache (PC2) path. Measured with bench/bench_blender.py
# (bench/RESULTS.md, 7k vertices, bpy 5.0.1, 2-core CPU): a frame change costs 1.1 ms with 100 shape
# keys, 6 ms with 300, 21 ms with 500 and 78 ms with 1000 (it grows faster than the key count), while
# the Mesh Cache stays at ~1 ms; 300 keys keeps scrubbing well inside a 30 fps frame budget.
MESH_CACHE_ABOVE_FRAMES = 300


@dataclass
class WriteOptions:
    mode: str = "AUTO"
    name: str = "DLATrack"
    cache_dir: str | None = None  # where the PC2 goes; default: the job folder's parent
    mesh_cache_above: int = MESH_CACHE_ABOVE_FRAMES


class SceneWriter:
    """Mirrors one job folder into the scene; `write(frames)` may be called repeatedly with new frames."""

    def __init__(
        self, scene: bpy.types.Scene, avatar: bpy.types.Object, result: TrackResult, options: WriteOptions | None = None
    ):
        self.scene, self.avatar, self.result = scene, avatar, result
        self.options = options or WriteOptions()
        if self.options.mode not in MODES:
            raise ValueError(f"write mode {self.options.mode!r}: expected one of {MODES}")
        self.requested = result.requested_frames()
        self.mode = self._choose_mode()
        collection = avatar.users_collection[0] if avatar.users_collection else scene.collection
        name = self.options.name
        self.head = pose.ensure_head_empty(f"{name} Head", collection)
        pose.parent_to(avatar, self.head)
        self.camera = camera.ensure_camera(f"{name} Camera", collection)
        self.material = material.ensure_avatar_material(f"{name} {avatar.name}")
        material.assign(avatar, self.material)
        self.pc2_path: Path | None = None
        self._pc2_next: int | None = None  # next video index the PC2 expects
        self._pending: dict[int, np.ndarray] = {}
        self._last_quaternion: np.ndarray | None = None
        self.written: set[int] = set()
        self._setup_timing_and_camera()

    def _choose_mode(self) -> str:
        # A PC2 holds one sample per scene frame, so it needs consecutive video frames (stride 1).
        contiguous = not self.requested or self.requested == list(range(self.requested[0], self.requested[-1] + 1))
        if self.options.mode == "MESH_CACHE" and not contiguous:
            raise ValueError(f"job {self.result.root}: Mesh Cache needs consecutive frames (stride 1); use shape keys")
        if self.options.mode != "AUTO":
            return self.options.mode
        return "MESH_CACHE" if contiguous and len(self.requested) > self.options.mesh_cache_above else "SHAPE_KEYS"

    def _setup_timing_and_camera(self) -> None:
        setup = self.result.camera()
        render = self.scene.render
        render.fps = max(1, round(setup.fps))
        render.fps_base = render.fps / setup.fps
        if self.requested:
            self.scene.frame_start = scene_frame(min(self.requested))
            self.scene.frame_end = scene_frame(max(self.requested))
        camera.apply_camera(self.scene, self.camera, setup.data, setup.matrix_world, setup.width, setup.height)
        video = self.result.manifest.video
        video_path = video.get("path") if isinstance(video, dict) else video
        if video_path and self.requested:
            # The background's image user counts from video frame 0 at scene frame 1.
            last = scene_frame(max(self.requested))
            image = camera.set_background_video(self.camera, video_path, scene_frame(0), last)
            if image is None:  # e.g. a path on an engine's machine: say so rather than show no video
                log.warning("job %s: video '%s' is not on this machine; the camera has no background", self.result.root,
                            video_path)  # fmt: skip
        self.scene.view_settings.view_transform = "Standard"

    # -- frames ------------------------------------------------------------------------------------------
    def write_new(self) -> int:
        """Write the frames finished since the last call (each frame file is read once); returns how many."""
        frames = self.result.read_new(self.written)
        self.write(frames)
        return len(frames)

    def write(self, frames: TrackFrames) -> None:
        if len(frames) == 0:
            return
        quaternions = frames.quaternions.copy()
        if self._last_quaternion is not None and np.dot(quaternions[0], self._last_quaternion) < 0:
            quaternions = -quaternions  # keep LINEAR interpolation on the short arc across batches
        self._last_quaternion = quaternions[-1]
        pose.write_pose_keys(self.head, frames.scene_frames, frames.locations, quaternions, merge=bool(self.written))
        if self.mode == "SHAPE_KEYS":
            names = [shape_key_name(i) for i in frames.video_indices]
            timeline = [scene_frame(i) for i in self.requested]
            shapekeys.write_shape_keys(self.avatar, names, frames.scene_frames, frames.vertices, neighbours=timeline)
        else:
            self._write_pc2(frames)
        self.written.update(int(i) for i in frames.video_indices)

    def _write_pc2(self, frames: TrackFrames) -> None:
        """Append frames to the PC2 in video order; frames arriving early wait until the gap fills."""
        for index, vertices in zip(frames.video_indices, frames.vertices, strict=True):
            self._pending[int(index)] = vertices
        if self._pc2_next is None:
            first = min(self.requested) if self.requested else min(self._pending)
            if first not in self._pending:
                return
            folder = Path(self.options.cache_dir) if self.options.cache_dir else self.result.root.parent
            folder.mkdir(parents=True, exist_ok=True)
            self.pc2_path = folder / f"{self.result.root.name}_{self.avatar.name}.pc2".replace(" ", "_")
            pc2.write_pc2(self.pc2_path, self._pending.pop(first)[None], start_frame=scene_frame(first))
            self._pc2_next = first + 1
            meshcache.attach_mesh_cache(self.avatar, self.pc2_path, scene_frame(first))
        run = []
        while self._pc2_next in self._pending:
            run.append(self._pending.pop(self._pc2_next))
            self._pc2_next += 1
        if run:
            pc2.append_pc2(self.pc2_path, np.stack(run))

    # -- textures ----------------------------------------------------------------------------------------
    def write_textures(self, view: str | None = None) -> list[str]:
        return apply_textures(self.material, self.result, view)


def apply_textures(avatar_material: bpy.types.Material, result: TrackResult, view: str | None = None) -> list[str]:
    """Point the material at the job's fully-lit/relit PNG sequences (or a viewpoint's re-decode)."""
    done = []
    for kind in material.NODE_FOR_KIND:
        sequence = result.texture_sequence(kind, view)
        if sequence is None:
            continue
        first_png, indices = sequence
        user = sequence_image_user(indices[0], indices[-1] - indices[0] + 1)
        material.set_texture_sequence(avatar_material, kind, first_png, user)
        done.append(kind)
    if not done:
        log.warning("job %s: no texture sequences (view %s) to show", result.root, view)
    return done


def write_result(
    scene: bpy.types.Scene, avatar: bpy.types.Object, job_folder: str | Path, options: WriteOptions | None = None
) -> SceneWriter:
    """Write a whole job folder at once (batch mode and tests)."""
    writer = SceneWriter(scene, avatar, TrackResult(job_folder), options)
    writer.write_new()
    writer.write_textures()
    return writer
