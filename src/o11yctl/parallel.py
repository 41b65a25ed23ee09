"""Run a few calls at once and wait for them in a way Ctrl-C can always end.

``concurrent.futures`` joins its worker threads when the interpreter exits, so a Ctrl-C
during a long SSH connect or a hung HTTP request would leave o11yctl waiting for that
call's own timeout. Here every call runs in a daemon thread and the caller waits in
short slices: an interrupt reaches the caller at once, the calls still running are
abandoned (their connections are closed when the process ends), and nothing new starts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_threads(items: Sequence[T], fn: Callable[[T], R], *, name: str = "o11yctl") -> list[R | BaseException]:
    """Call ``fn`` on every item at once; return each result, or the exception it raised, in order.

    Raises:
        KeyboardInterrupt: Ctrl-C while waiting (the calls still running are abandoned).
    """
    results: list[R | BaseException | None] = [None] * len(items)
    done = threading.Event()
    left = [len(items)]
    lock = threading.Lock()

    def run(index: int, item: T) -> None:
        try:
            results[index] = fn(item)
        except BaseException as exc:  # handed to the caller, who decides
            results[index] = exc
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()

    if not items:
        return []
    for index, item in enumerate(items):
        threading.Thread(target=run, args=(index, item), name=f"{name}-{index}", daemon=True).start()
    while not done.wait(0.1):
        pass
    return [r for r in results]  # type: ignore[misc]
