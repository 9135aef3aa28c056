"""Video input: any clip OpenCV/imageio reads (file or image folder) -> linear-RGB frames."""

from dlatrack_engine.video.reader import Clip, VideoError, VideoInfo, probe_video, read_clip

__all__ = ["Clip", "VideoError", "VideoInfo", "probe_video", "read_clip"]
