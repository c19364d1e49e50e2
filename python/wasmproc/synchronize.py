"""Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition and Barrier: objects the host
keeps, shared with the children they are passed to (multiprocessing.synchronize)."""

import threading
import time

from . import _host
from ._share import HostObject
from wit_world.imports.sync import LockKind

__all__ = ["Event", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Barrier"]


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


def _owner_died(e):
    return getattr(e, "_owner_died", False)


class Condition(HostObject):
    """multiprocessing.Condition: over a new RLock, or over the Lock or RLock given. wait()
    and notify() without holding the lock raise CPython's AssertionError."""

    def __init__(self, lock=None, *, ctx=None):
        if lock is None:
            lock = RLock()
        if not isinstance(lock, (Lock, RLock)):
            raise TypeError("a wasmproc Condition needs a Lock or RLock, not %s" % type(lock).__name__)
        self._bind(_host.call(_host.sync.condition_new, lock._h))
        self._set_state(lock)

    def _state(self):
        return self._lock

    def _set_state(self, lock):
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def __repr__(self):
        return "<%s(%s, unknown)>" % (type(self).__name__, self._lock)

    def wait(self, timeout=None):
        try:
            return _host.call(_host.sync.condition_wait, self._h, _host.nanos(timeout))
        except OSError as e:
            if _owner_died(e):
                # The lock is held again, taken from an owner that ended holding it.
                return True
            raise

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        if result:
            return result
        if timeout is not None:
            endtime = time.monotonic() + timeout
        else:
            endtime = None
            waittime = None
        while not result:
            if endtime is not None:
                waittime = endtime - time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        _host.call(_host.sync.condition_notify, self._h, max(0, min(n, 2**32 - 1)))

    def notify_all(self):
        _host.call(_host.sync.condition_notify, self._h, None)


class Barrier(HostObject):
    """multiprocessing.Barrier: wait() returns once `parties` processes wait, with this
    party's arrival index. The party that arrives last runs `action` (any picklable
    callable: a module-level function travels by its qualified name) before the others are
    released; if it raises, the barrier breaks and the exception propagates to that party.
    A timeout, reset(), abort() or a party's end while it waits raise
    threading.BrokenBarrierError in the parties waiting."""

    def __init__(self, parties, action=None, timeout=None, *, ctx=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        h = _host.call(
            _host.sync.barrier_new, min(parties, 2**32 - 1), action is not None, _host.nanos(timeout)
        )
        self._bind(h)
        self._set_state((parties, action, timeout))

    def _state(self):
        return (self._parties, self._action, self._timeout)

    def _set_state(self, state):
        self._parties, self._action, self._timeout = state

    def wait(self, timeout=None):
        index = _host.call(_host.sync.barrier_wait, self._h, _host.nanos(timeout))
        if self._action is not None and index + 1 == self._parties:
            try:
                self._action()
            except BaseException:
                _host.call(_host.sync.barrier_action_done, self._h, False)
                raise
            _host.call(_host.sync.barrier_action_done, self._h, True)
        return index

    def reset(self):
        _host.call(_host.sync.barrier_reset, self._h)

    def abort(self):
        _host.call(_host.sync.barrier_abort, self._h)

    @property
    def parties(self):
        return self._parties

    @property
    def n_waiting(self):
        return _host.call(_host.sync.barrier_state, self._h).n_waiting

    @property
    def broken(self):
        return _host.call(_host.sync.barrier_state, self._h).broken

    def __repr__(self):
        if self.broken:
            return f"<{type(self).__qualname__} at {id(self):#x}: broken>"
        return (
            f"<{type(self).__qualname__} at {id(self):#x}:"
            f" waiters={self.n_waiting}/{self.parties}>"
        )


BrokenBarrierError = threading.BrokenBarrierError
