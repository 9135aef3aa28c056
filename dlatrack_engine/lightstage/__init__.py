"""The light-stage dataset format (conventions.md): `format` (names, checks), `writer` (numpy + stdlib only, so
Blender's Python and capture scripts can write it), `reader` (numpy/OpenCV) and `exr` (Cycles' multi-layer
EXR output)."""
