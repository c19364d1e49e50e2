"""How sync objects travel to a child: while a child's start arguments are pickled, each
queue, connection, event, lock or semaphore in them records its host handle in the list of
`shares` that `create` passes to the host, and pickles as that handle; the child, which holds
the object under the same handle from its start, rebuilds it from there. Outside a child's
start arguments such an object refuses to be pickled, as CPython's do."""

import pickle

from . import _host

# The handles of the sync objects met while pickling a child's start arguments; None when
# no such pickling is under way.
_collecting = None

# How many live Python objects of this process name each host handle: the last one to go
# tells the host this process no longer holds the object.
_refs = {}


def dumps_for_child(obj):
    """`obj` pickled for a child's start arguments, and the handles it shares."""
    global _collecting
    outer, _collecting = _collecting, []
    try:
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        return data, list(dict.fromkeys(_collecting))
    finally:
        _collecting = outer


def assert_spawning(obj, handle):
    """Records `handle` as shared; raises CPython's error outside a child's start arguments."""
    if _collecting is None:
        raise RuntimeError(
            "%s objects should only be shared between processes through inheritance"
            % type(obj).__name__
        )
    _collecting.append(handle)


def hold(handle):
    _refs[handle] = _refs.get(handle, 0) + 1


def drop(handle):
    """One Python object naming `handle` is gone; closes it when it was the last."""
    n = _refs.get(handle)
    if n is None:
        return
    if n <= 1:
        del _refs[handle]
        _host.sync.close(handle)
    else:
        _refs[handle] = n - 1


def close(handle):
    """This process stops holding `handle`, whatever else names it."""
    if _refs.pop(handle, None) is not None:
        _host.sync.close(handle)


def is_held(handle):
    return handle in _refs


class HostObject:
    """Base of the sync objects: a host handle, pickled as described above."""

    _kind = "object"

    def _bind(self, handle):
        self._h = handle
        hold(handle)

    def __reduce__(self):
        assert_spawning(self, self._h)
        return (_rebuild, (type(self), self._h, self._state()))

    def _state(self):
        return None

    def _set_state(self, state):
        pass

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            try:
                drop(h)
            except Exception:
                pass


def _rebuild(cls, handle, state):
    obj = cls.__new__(cls)
    obj._bind(handle)
    obj._set_state(state)
    return obj


def check_spawning(obj):
    """Raises CPython's error when `obj` (a wrapper of sync objects, which record their own
    handles) is pickled outside a child's start arguments."""
    if _collecting is None:
        raise RuntimeError(
            "%s objects should only be shared between processes through inheritance"
            % type(obj).__name__
        )
