"""The host calls of wit/process.wit, with the host's `error` records raised as the
exceptions CPython's multiprocessing raises for the same mistakes."""

import queue as _queue
import threading as _threading

from componentize_py_types import Err
from wit_world.imports import process as _process
from wit_world.imports import sync as _sync
from wit_world.imports.types import ErrorKind

# The host's `invalid-state` messages that CPython raises as something else than
# AssertionError.
_VALUE_ERRORS = (
    "Cannot close a process while it is still running",
    "process not started",
    "semaphore or lock released too many times",
)
_OS_ERRORS = ("connection is read-only", "connection is write-only")
# The host's `invalid-state` messages for a Condition used without its lock (threading's
# words), as CPython's multiprocessing.Condition says them (an AssertionError).
_CONDITION_ERRORS = {
    "cannot wait on un-acquired lock": "must acquire() condition before using wait()",
    "cannot notify on un-acquired lock": "lock is not owned",
}
# The host's `invalid-argument` messages that CPython raises as IndexError (a managed list).
_INDEX_ERRORS = ("list index out of range", "pop from empty list")


class LimitExceeded(OSError):
    """A limit of the wasmproc host would be exceeded (wasmproc's own; no CPython
    equivalent). The message names the limit and its value."""


def exception(error):
    """The Python exception for one of the host's `error` records."""
    kind, message = error.kind, error.message
    if kind == ErrorKind.INVALID_STATE:
        if message.startswith(_VALUE_ERRORS):
            return ValueError(message)
        if message in _OS_ERRORS:
            return OSError(message)
        if message in _CONDITION_ERRORS:
            return AssertionError(_CONDITION_ERRORS[message])
        if message == "task_done() called too many times":
            return ValueError(message)
        if message == "cannot release un-acquired lock":
            # CPython's multiprocessing.RLock says it in its own words.
            return AssertionError("attempt to release recursive lock not owned by thread")
        return AssertionError(message)
    if kind == ErrorKind.NOT_A_CHILD:
        return AssertionError(message)
    if kind == ErrorKind.INVALID_ARGUMENT and message in _INDEX_ERRORS:
        return IndexError(message)
    if kind in (ErrorKind.CLOSED, ErrorKind.INVALID_ARGUMENT, ErrorKind.UNKNOWN_TARGET):
        return ValueError(message)
    if kind == ErrorKind.EMPTY:
        return _queue.Empty()
    if kind == ErrorKind.FULL:
        return _queue.Full()
    if kind == ErrorKind.EOF:
        return EOFError()
    if kind == ErrorKind.BROKEN_PIPE:
        return BrokenPipeError(32, "Broken pipe")
    if kind == ErrorKind.OWNER_DIED:
        e = OSError(message)
        e._owner_died = True  # the lock was acquired all the same
        return e
    if kind == ErrorKind.BROKEN_BARRIER:
        return _threading.BrokenBarrierError()
    if kind == ErrorKind.LIMIT_EXCEEDED:
        return LimitExceeded(message)
    return OSError(message)


# True while the build runs the main script's top level (there is no host then).
building = False


def check_runtime():
    if building:
        raise RuntimeError(
            "wasmproc: the main script's top level runs when the program is built, where "
            "there are no processes: create processes and sync objects under "
            "`if __name__ == \"__main__\":` or in functions"
        )


def call(fn, *args):
    """Calls host function `fn`, raising its error as the matching Python exception."""
    check_runtime()
    try:
        return fn(*args)
    except Err as e:
        raise exception(e.value) from None


def nanos(timeout):
    """A Python timeout in seconds (None: forever) as the host's nanoseconds."""
    if timeout is None:
        return None
    if timeout <= 0:
        return 0
    return min(int(timeout * 1e9), 2**64 - 1)


process = _process
sync = _sync
