"""A memory budget for decoding uploaded pictures: how many bytes of full-size decoded pixels
one API process holds at once.

Why: a picture's file says little about its decoded size (a 50 KB PNG can decode to 160 MB),
and the API serves many requests at once. Uploads are decoded small where the format allows
(``lookalike.hashing.decode_image``), but a PNG or WebP is decoded whole before it is reduced,
so concurrent decodes wait for room in this budget instead of adding up.

The budget bounds what is in use; ``return_large_frees`` makes sure what was freed goes back
to the system too (see there).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Room for one picture at the upload pixel cap (40 M pixels x 4 bytes) and a few small ones.
DEFAULT_BUDGET_BYTES = 192 * 2**20
# How long an upload waits for room before it is answered 503.
DEFAULT_WAIT_S = 60.0


# glibc's mallopt() parameter for the size from which allocations are mmapped.
_M_MMAP_THRESHOLD = -3


def return_large_frees(threshold: int = 1 << 20) -> bool:
    """Have glibc's malloc hand every block of ``threshold`` bytes or more back to the system
    when it is freed; False where malloc is not glibc's (nothing to tune).

    Why: glibc raises its mmap threshold (up to 32 MB) once it sees large blocks freed, and
    then serves large blocks from per-thread arenas, which keep what they freed for their
    thread's next use. Decoded pictures (PIL allocates them in 16 MB blocks) passing through
    the API's request threads then leave ~160 MB behind in each thread: eight concurrent
    uploads peaked at 1.3 GB although the budget let only one decode run at a time. A fixed
    threshold keeps large blocks mapped on their own and unmapped when freed.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


class DecodeBusy(RuntimeError):
    """No room in the budget within the wait."""


class DecodeBudget:
    def __init__(
        self, capacity: int = DEFAULT_BUDGET_BYTES, wait_s: float = DEFAULT_WAIT_S
    ) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self.used = 0
        self._room = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` of the budget (at most all of it) while the block runs."""
        need = min(max(0, nbytes), self.capacity)
        with self._room:
            if not self._room.wait_for(lambda: self.used + need <= self.capacity, self.wait_s):
                raise DecodeBusy(
                    f"the server is decoding other large pictures; try again in a few seconds "
                    f"(this one needs {need // 2**20} MB of the {self.capacity // 2**20} MB "
                    "kept for decoding uploads)"
                )
            self.used += need
        try:
            yield
        finally:
            with self._room:
                self.used -= need
                self._room.notify_all()
