"""dlatrack_engine.wire: what crosses the engine/Blender boundary, torch-free (stdlib + numpy only).

`protocol` (socket frames), `jobfolder` (the job folder on disk), `jobs` (the job state machine), `png`.
The Blender add-on imports this very package through the `blender_addon/io/wire` symlink.
"""
