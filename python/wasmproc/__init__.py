"""wasmproc for Python guests: the API of Python's `multiprocessing`, over the wasmproc
host (wit/process.wit). Each process is a fresh instance of the program, as with the
`spawn` start method; see the README's "Python guests" section."""

from . import _host
from .process import Process, current_process, parent_process, active_children
from .queues import Queue, SimpleQueue, JoinableQueue
from .connection import Pipe, BufferTooShort
from .synchronize import Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Barrier
from .sharedctypes import Value, Array, RawValue, RawArray
from .pool import Pool, ProcessError, TimeoutError
from ._host import LimitExceeded

__all__ = [
    "Process", "current_process", "parent_process", "active_children", "cpu_count",
    "Queue", "SimpleQueue", "JoinableQueue", "Pipe", "Event", "Lock", "RLock", "Semaphore",
    "BoundedSemaphore", "Condition", "Barrier", "Value", "Array", "RawValue", "RawArray",
    "Manager", "Pool", "ProcessError", "TimeoutError", "AuthenticationError",
    "BufferTooShort", "LimitExceeded", "get_context", "get_start_method",
    "set_start_method", "get_all_start_methods", "freeze_support", "set_executable",
]


class AuthenticationError(ProcessError):
    pass


def cpu_count():
    """The number of CPUs the host makes available."""
    return _host.process.cpu_count()


def Manager(*, ctx=None):
    """A manager whose dict(), list() and Namespace() the host keeps (there is no server
    process: the host plays it)."""
    from .managers import SyncManager

    m = SyncManager()
    m.start()
    return m


def freeze_support():
    pass


def set_executable(executable):
    pass


def get_all_start_methods():
    return ["spawn"]


def get_start_method(allow_none=False):
    return "spawn"


def set_start_method(method, force=False):
    if method not in (None, "spawn"):
        raise ValueError("cannot find context for %r" % method)


class _Context:
    """What get_context() returns: this module's API, with the only start method, spawn."""

    def __init__(self):
        import sys

        self._mod = sys.modules[__name__]

    def __getattr__(self, name):
        return getattr(self._mod, name)

    def get_start_method(self, allow_none=False):
        return "spawn"


def get_context(method=None):
    if method not in (None, "spawn"):
        raise ValueError("cannot find context for %r" % method)
    return _Context()

from . import connection, managers, pool, process, queues, sharedctypes, synchronize  # noqa: E402,F401
