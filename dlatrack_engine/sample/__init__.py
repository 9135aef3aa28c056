"""The synthetic sample subject, engine side: `make_sample` (the `dlatrack make-sample` command that runs the
Blender scripts in sample_scenes/generator/), `unwrap` (DAM training textures), `validate`, `contact_sheet`,
`clips` (mp4, export) and `raster` (a numpy z-buffer used by the checks)."""
