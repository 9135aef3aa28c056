"""A track job's folder -> per-frame arrays in Blender's conventions, ready for the thin bpy writers.

Reads through the shared `wire.jobfolder` reader (the same code the engine writes with) and converts with
`convert`: vertices into the avatar object's frame, head poses into object matrices / quaternions in
Blender's Z-up world, the video camera into Blender camera settings. Video frame i is scene frame i + 1
(Blender's default start), so textures, shape keys and the background video line up by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import convert
from .wire.jobfolder import TEXTURE_KINDS, JobFolder, JobFolderError
from .wire.manifest import Manifest

FIRST_SCENE_FRAME = 1


def scene_frame(video_index: int) -> int:
    """Scene frame that shows video frame `video_index` (0-based)."""
    return int(video_index) + FIRST_SCENE_FRAME


def shape_key_name(video_index: int) -> str:
    """`frame_0001`-style name: the scene frame number, as the user sees it in the timeline."""
    return f"frame_{scene_frame(video_index):04d}"


@dataclass
class CameraSetup:
    """The video camera: intrinsics as Blender camera data, extrinsics as a world matrix, video size/fps."""

    K: np.ndarray
    width: int
    height: int
    fps: float
    data: dict[str, float | str]
    matrix_world: np.ndarray


@dataclass
class TrackFrames:
    """Finished frames of a track job in Blender conventions (N frames, V vertices)."""

    video_indices: np.ndarray  # [N] int, 0-based video frame index
    vertices: np.ndarray  # [N, V, 3] float32, Blender object frame
    matrices: np.ndarray  # [N, 4, 4] float64, avatar object matrix_world (Blender world)
    quaternions: np.ndarray = field(init=False)  # [N, 4] (w, x, y, z), signs aligned for interpolation
    locations: np.ndarray = field(init=False)  # [N, 3]

    def __post_init__(self) -> None:
        self.quaternions = (
            convert.matrix_to_quaternions(self.matrices[:, :3, :3]) if len(self.matrices) else np.zeros((0, 4))
        )
        self.locations = self.matrices[:, :3, 3].copy()

    @property
    def scene_frames(self) -> np.ndarray:
        return self.video_indices.astype(np.int64) + FIRST_SCENE_FRAME

    def __len__(self) -> int:
        return int(self.video_indices.shape[0])


class TrackResult:
    """One job folder seen from Blender. Cheap to construct; each read goes to disk (frames may be arriving)."""

    def __init__(self, root: str | Path) -> None:
        self.folder = JobFolder(root)
        self.root = self.folder.root
        self.manifest: Manifest = self.folder.read_manifest()

    def refresh(self) -> Manifest:
        self.manifest = self.folder.read_manifest()
        return self.manifest

    def _field(self, name: str) -> Any:
        value = getattr(self.manifest, name)
        if value is None:
            raise JobFolderError(f"{self.folder.manifest_path}: field '{name}' is not set (has the job started?)")
        return value

    def camera(self) -> CameraSetup:
        """The video camera from the manifest's `K`, `size` ([width, height]) and `fps`."""
        K = np.asarray(self._field("K"), dtype=np.float64)
        size = self._field("size")
        if not isinstance(size, Sequence) or len(size) != 2:
            raise JobFolderError(f"{self.folder.manifest_path}: field 'size' is {size!r}, expected [width, height]")
        width, height = int(size[0]), int(size[1])
        fps = float(self._field("fps"))
        if fps <= 0:
            raise JobFolderError(f"{self.folder.manifest_path}: field 'fps' is {fps}, expected > 0")
        try:
            data = convert.intrinsics_to_blender_camera(K, width, height)
        except ValueError as exc:
            raise JobFolderError(f"{self.folder.manifest_path}: {exc}") from exc
        return CameraSetup(K, width, height, fps, data, convert.opencv_extrinsics_to_camera_matrix())

    def requested_frames(self) -> list[int]:
        """The video frames the job will track (manifest `frames`), in order."""
        return [int(i) for i in self.manifest.frames]

    def frames_done(self) -> list[int]:
        return self.folder.frames_done()

    def read_new(self, seen: set[int]) -> TrackFrames:
        """The finished frames not in `seen` (those already in the scene): each frame file is read once."""
        return self.read([i for i in self.frames_done() if i not in seen])

    def read(self, indices: Iterable[int] | None = None) -> TrackFrames:
        """Finished frames (all of them, or `indices`), converted to Blender conventions."""
        track = self.folder.read_track(indices)
        frames = track["frames"]
        if len(frames) == 0:
            return TrackFrames(np.zeros(0, np.int64), np.zeros((0, 0, 3), np.float32), np.zeros((0, 4, 4)))
        return TrackFrames(
            video_indices=frames.astype(np.int64),
            vertices=convert.head_vertices_to_object(track["vertices"]),
            matrices=convert.head_pose_to_object_matrix(track["head_R"], track["head_t"]),
        )

    def texture_sequence(self, kind: str, view: str | None = None) -> tuple[Path, list[int]] | None:
        """(first PNG, video indices present) of a texture sequence, or None when none was written."""
        if kind not in TEXTURE_KINDS:
            raise JobFolderError(f"texture kind {kind!r} must be one of {TEXTURE_KINDS}")
        directory = self.folder.texture_path(kind, 0, view).parent
        if not directory.is_dir():
            return None
        indices = sorted(int(p.stem) for p in directory.glob("*.png") if p.stem.isdigit())
        if not indices:
            return None
        return self.folder.texture_path(kind, indices[0], view), indices


def sequence_image_user(first_video_index: int, count: int) -> dict[str, int]:
    """Image-user settings that show PNG `<i:06d>` at scene frame `scene_frame(i)`.

    Blender shows file number `scene_frame - frame_start + 1 + frame_offset` while the scene frame is in
    [frame_start, frame_start + frame_duration); we want file number `scene_frame - FIRST_SCENE_FRAME`.
    """
    start = scene_frame(first_video_index)
    return {"frame_start": start, "frame_offset": start - FIRST_SCENE_FRAME - 1, "frame_duration": int(count)}


def view_name(camera_name: str) -> str:
    """A job-folder-safe name for a viewpoint (the engine accepts 1-64 letters, digits, '-' and '_')."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in camera_name)[:64]
    return cleaned or "camera"


def view_vectors_for_cameras(track: TrackFrames, camera_centres_blender: np.ndarray) -> np.ndarray:
    """Eq. 1's v_v for each tracked frame, from the viewing camera's centre (Blender world) per frame.

    The head poses come back to the engine's world through the inverse of the object-matrix conversion:
    R = C^T M A, t = C^T m, with C = CV_WORLD_TO_BLENDER and A = HEAD_TO_OBJECT.
    """
    centres = np.asarray(camera_centres_blender, dtype=np.float64).reshape(-1, 3)
    if len(centres) not in (1, len(track)):
        raise ValueError(f"camera centres: expected 1 or {len(track)} rows, got {len(centres)}")
    rotation = convert.CV_WORLD_TO_BLENDER.T @ track.matrices[:, :3, :3] @ convert.HEAD_TO_OBJECT
    translation = track.matrices[:, :3, 3] @ convert.CV_WORLD_TO_BLENDER
    return convert.view_vector_in_head(rotation, translation, convert.blender_point_to_cv_world(centres))
