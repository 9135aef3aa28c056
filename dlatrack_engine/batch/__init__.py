"""`dlatrack batch`: many clips at once, one Ray task per clip, each writing a normal job folder.

`clips` turns the command line into clips and job names, `jobs` says what a job folder already holds,
`task` is the work one Ray task does for one clip, `table` is the result table (`batch.json`), `ray_run`
drives Ray (local or a cluster) and `cli` is the command. docs/batch.md has the cluster set-ups.
"""
