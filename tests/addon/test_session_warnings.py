"""Issue 19, class 9: the job's warnings (several faces in view) reach the add-on's report, once each."""

from __future__ import annotations

import queue

from blender_addon.io.session import TrackSession


class _Client:
    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()

    def events(self) -> queue.Queue:
        return self.queue

    def job_status(self, job_id: str) -> dict:
        return {"job_id": job_id, "state": "running"}


def test_warning_log_events_are_reported_once() -> None:
    client = _Client()
    session = TrackSession(client, {"job_id": "j1", "state": "running"}, lambda: 0, status_interval_s=3600)
    message = "'two.mp4': more than one face in 6 of 6 frames (0, 1, 2, 3, 4, 5); tracking one person"
    client.queue.put({"type": "event", "job_id": "j1", "kind": "log", "level": "warning", "message": message})
    client.queue.put({"type": "event", "job_id": "j1", "kind": "log", "level": "info", "message": "step 1"})
    assert session.pump().warnings == (message,)
    assert session.pump().warnings == ()
