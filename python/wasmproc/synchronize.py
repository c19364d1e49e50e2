"""Event, Lock, RLock, Semaphore and BoundedSemaphore: objects the host keeps, shared with
the children they are passed to (multiprocessing.synchronize)."""

from . import _host
from ._share import HostObject
from wit_world.imports.sync import LockKind

__all__ = ["Event", "Lock", "RLock", "Semaphore", "BoundedSemaphore"]


class Event(HostObject):
    def __init__(self, *, ctx=None):
        self._bind(_host.call(_host.sync.event_new))

    def is_set(self):
        return _host.call(_host.sync.event_is_set, self._h)

    def set(self):
        _host.call(_host.sync.event_set, self._h)

    def clear(self):
        _host.call(_host.sync.event_clear, self._h)

    def wait(self, timeout=None):
        return _host.call(_host.sync.event_wait, self._h, _host.nanos(timeout))

    def __repr__(self):
        set_status = "set" if self.is_set() else "unset"
        return f"<{type(self).__qualname__} at {id(self):#x} {set_status}>"


class SemLock(HostObject):
    _lock_kind = LockKind.SEMAPHORE

    def _new(self, value):
        self._bind(_host.call(_host.sync.lock_new, self._lock_kind, value))

    def acquire(self, block=True, timeout=None):
        try:
            return _host.call(
                _host.sync.lock_acquire, self._h, bool(block), _host.nanos(timeout) if block else None
            )
        except Exception as e:
            if getattr(e, "_owner_died", False):
                return True
            raise

    def release(self):
        _host.call(_host.sync.lock_release, self._h)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *args):
        return self.release()

    def _value(self):
        return _host.call(_host.sync.lock_value, self._h)


class Semaphore(SemLock):
    def __init__(self, value=1, *, ctx=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._new(value)

    def get_value(self):
        return self._value()

    def __repr__(self):
        return "<%s(value=%s)>" % (type(self).__name__, self._value())


class BoundedSemaphore(Semaphore):
    _lock_kind = LockKind.BOUNDED_SEMAPHORE


class Lock(SemLock):
    _lock_kind = LockKind.LOCK

    def __init__(self, *, ctx=None):
        self._new(1)

    def __repr__(self):
        return "<%s(owner=%s)>" % (type(self).__name__, "None" if self._value() else "SomeOtherProcess")


class RLock(SemLock):
    _lock_kind = LockKind.RLOCK

    def __init__(self, *, ctx=None):
        self._new(1)

    def __repr__(self):
        return "<%s(%s, %s)>" % (type(self).__name__, "None" if self._value() else "SomeOtherProcess", 0)
