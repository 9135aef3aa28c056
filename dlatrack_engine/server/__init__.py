"""dlatrack_engine.server: the long-lived engine process behind `dlatrack serve` (see docs/protocol.md).

`server` (sockets, auth, connections), `handlers` (one function per request), `jobqueue` (one compute job
at a time, events, resume), `work` (job kinds and the pipeline adapter), `decode` (decode_view),
`avatars` (loaded avatars), `connection_file`, `cli` (the `serve` sub-command).
"""
