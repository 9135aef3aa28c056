"""Which source frames a clip reads: [start, stop) every `stride`, or an explicit list of indices.

Membership is arithmetic, never a materialised range: a raw stream whose container reports no (or a
negative) frame count must not turn `stop=None` into `range(2**30)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Selection:
    """A frame range; `count`, `last` and `within` take the clip's length when it is known."""

    def __init__(self, start: int = 0, stop: int | None = None, stride: int = 1) -> None:
        if stride < 1:
            raise ValueError(f"frame stride must be >= 1, got {stride}")
        if start < 0:
            raise ValueError(f"frame range start must be >= 0, got {start}")
        if stop is not None and stop < 0:
            raise ValueError(f"frame range stop must be >= 0, got {stop}")
        self.start, self.stop, self.stride = start, stop, stride
        self._explicit: frozenset[int] | None = None

    @classmethod
    def of_indices(cls, indices: Iterable[int]) -> Selection:
        """Exactly these frames (e.g. those a clip read before, to stream them again)."""
        chosen = frozenset(int(i) for i in indices)
        selection = cls(min(chosen, default=0), max(chosen, default=-1) + 1, 1)
        selection._explicit = chosen
        return selection

    def __contains__(self, index: int) -> bool:
        if self._explicit is not None:
            return index in self._explicit
        in_range = index >= self.start and (self.stop is None or index < self.stop)
        return in_range and (index - self.start) % self.stride == 0

    def end(self, count: int | None) -> int | None:
        """One past the last index that can be selected, or None when unbounded (unknown length, no stop)."""
        if count is None:
            return self.stop
        return count if self.stop is None else min(self.stop, count)

    def last(self, count: int | None) -> int | None:
        """The last index worth decoding (None: decode to the end of the stream)."""
        end = self.end(count)
        return None if end is None else end - 1

    def count(self, count: int | None) -> int | None:
        """How many frames are selected, when that is known."""
        end = self.end(count)
        if end is None:
            return None
        if self._explicit is not None:
            return sum(1 for i in self._explicit if i < end)
        return len(range(self.start, end, self.stride))

    def within(self, count: int) -> Iterator[int]:
        """The selected indices of a clip of `count` frames, in order."""
        end = self.end(count)
        assert end is not None
        return (i for i in range(self.start, end) if i in self)
