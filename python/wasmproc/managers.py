"""Manager() (multiprocessing.managers.SyncManager): the host plays the manager's server
process. `dict()` and `list()` are proxies of a dictionary and a list the host keeps, with
keys and values pickled; `Namespace()` keeps its attributes in such a dictionary and `Value()`
its value in such a list; the other methods return the ordinary shared objects (a Queue, a
Lock, an Array, ...), which need no proxy.

Differences from CPython: a key is found by its pickled bytes, so keys that are equal but
pickle differently (1 and 1.0, say) are different keys; a proxy or sync object cannot be a
value inside a managed dict or list (it travels only in a child's start arguments); a
method that reads and then changes the object (`setdefault`, `remove`, `sort`, a slice
assignment, ...) is several host calls, not one atomic step."""

import pickle

from . import _host
from ._share import HostObject

__all__ = ["BaseManager", "SyncManager", "DictProxy", "ListProxy", "ValueProxy", "Namespace"]


def _dumps(obj):
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


_loads = pickle.loads
_END = 2**32 - 1


class DictProxy(HostObject):
    """A dictionary the host keeps, shared by every process it is passed to."""

    def __init__(self, *args, **kwargs):
        self._bind(_host.call(_host.sync.dict_new))
        if args or kwargs:
            self.update(*args, **kwargs)

    def __repr__(self):
        return "<DictProxy object, typeid 'dict' at %#x>" % id(self)

    def __str__(self):
        return str(self.copy())

    def _get(self, key):
        return _host.call(_host.sync.dict_get, self._h, _dumps(key))

    def __getitem__(self, key):
        data = self._get(key)
        if data is None:
            raise KeyError(key)
        return _loads(data)

    def __setitem__(self, key, value):
        _host.call(_host.sync.dict_set, self._h, _dumps(key), _dumps(value))

    def __delitem__(self, key):
        if _host.call(_host.sync.dict_remove, self._h, _dumps(key)) is None:
            raise KeyError(key)

    def __contains__(self, key):
        return self._get(key) is not None

    def __len__(self):
        return _host.call(_host.sync.dict_len, self._h)

    def __iter__(self):
        return _DictIterator(self)

    def _items(self):
        return [(_loads(k), _loads(v)) for k, v in _host.call(_host.sync.dict_items, self._h)]

    def items(self):
        return self._items()

    def keys(self):
        return [k for k, _ in self._items()]

    def values(self):
        return [v for _, v in self._items()]

    def copy(self):
        return dict(self._items())

    def clear(self):
        _host.call(_host.sync.dict_clear, self._h)

    def get(self, key, default=None):
        data = self._get(key)
        return default if data is None else _loads(data)

    _MISSING = object()

    def pop(self, key, default=_MISSING):
        data = _host.call(_host.sync.dict_remove, self._h, _dumps(key))
        if data is None:
            if default is DictProxy._MISSING:
                raise KeyError(key)
            return default
        return _loads(data)

    def popitem(self):
        items = _host.call(_host.sync.dict_items, self._h)
        for k, _ in reversed(items):
            data = _host.call(_host.sync.dict_remove, self._h, k)
            if data is not None:
                return (_loads(k), _loads(data))
        raise KeyError("popitem(): dictionary is empty")

    def setdefault(self, key, default=None):
        data = self._get(key)
        if data is not None:
            return _loads(data)
        self[key] = default
        return default

    def update(self, *args, **kwargs):
        if len(args) > 1:
            raise TypeError("update expected at most 1 argument, got %d" % len(args))
        if args:
            other = args[0]
            if hasattr(other, "keys"):
                for k in other.keys():
                    self[k] = other[k]
            else:
                for k, v in other:
                    self[k] = v
        for k, v in kwargs.items():
            self[k] = v


class _DictIterator:
    """The keys at the iterator's start; RuntimeError once the dictionary's size changes,
    as a dict's iterator raises."""

    def __init__(self, d):
        self._d = d
        items = d.keys()
        self._keys = iter(items)
        self._len = len(items)

    def __iter__(self):
        return self

    def __next__(self):
        if self._keys is not None and len(self._d) != self._len:
            self._keys = None
            raise RuntimeError("dictionary changed size during iteration")
        if self._keys is None:
            raise StopIteration
        try:
            return next(self._keys)
        except StopIteration:
            self._keys = None
            raise


class ListProxy(HostObject):
    """A list the host keeps, shared by every process it is passed to."""

    def __init__(self, sequence=()):
        self._bind(_host.call(_host.sync.list_new))
        for item in sequence:
            self.append(item)

    def __repr__(self):
        return "<ListProxy object, typeid 'list' at %#x>" % id(self)

    def __str__(self):
        return str(self._items())

    def _items(self):
        return [_loads(x) for x in _host.call(_host.sync.list_items, self._h)]

    def __len__(self):
        return _host.call(_host.sync.list_len, self._h)

    def _index(self, i):
        if not isinstance(i, int):
            raise TypeError("list indices must be integers or slices, not %s" % type(i).__name__)
        if i < 0:
            i += len(self)
            if i < 0:
                raise IndexError("list index out of range")
        if i >= _END:
            raise IndexError("list index out of range")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._items()[i]
        return _loads(_host.call(_host.sync.list_get, self._h, self._index(i)))

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            items = self._items()
            items[i] = value
            self._replace(items)
            return
        _host.call(_host.sync.list_set, self._h, self._index(i), _dumps(value))

    def __delitem__(self, i):
        if isinstance(i, slice):
            items = self._items()
            del items[i]
            self._replace(items)
            return
        _host.call(_host.sync.list_pop, self._h, self._index(i))

    def _replace(self, items):
        """The list's items become `items` (several host calls)."""
        n = len(self)
        for k, item in enumerate(items[:n]):
            _host.call(_host.sync.list_set, self._h, k, _dumps(item))
        for item in items[n:]:
            self.append(item)
        for _ in range(n - len(items)):
            _host.call(_host.sync.list_pop, self._h, None)

    def __iter__(self):
        # As a list's iterator: by index, seeing changes made meanwhile.
        i = 0
        while True:
            try:
                item = _host.call(_host.sync.list_get, self._h, i)
            except IndexError:
                return
            yield _loads(item)
            i += 1

    def __reversed__(self):
        return reversed(self._items())

    def __contains__(self, value):
        return value in self._items()

    def __add__(self, other):
        return self._items() + list(other)

    def __radd__(self, other):
        return list(other) + self._items()

    def __mul__(self, n):
        return self._items() * n

    __rmul__ = __mul__

    def __iadd__(self, other):
        self.extend(other)
        return self

    def __imul__(self, n):
        items = self._items()
        if n <= 0:
            self._replace([])
        else:
            for _ in range(n - 1):
                self.extend(items)
        return self

    def append(self, item):
        _host.call(_host.sync.list_insert, self._h, _END, _dumps(item))

    def extend(self, items):
        for item in list(items):
            self.append(item)

    def insert(self, i, item):
        if i < 0:
            i = max(0, i + len(self))
        _host.call(_host.sync.list_insert, self._h, min(i, _END), _dumps(item))

    def pop(self, i=-1):
        if i == -1:
            return _loads(_host.call(_host.sync.list_pop, self._h, None))
        return _loads(_host.call(_host.sync.list_pop, self._h, self._index(i)))

    def index(self, value, *args):
        return self._items().index(value, *args)

    def count(self, value):
        return self._items().count(value)

    def remove(self, value):
        items = self._items()
        try:
            i = items.index(value)
        except ValueError:
            raise ValueError("list.remove(x): x not in list") from None
        _host.call(_host.sync.list_pop, self._h, i)

    def reverse(self):
        self._replace(self._items()[::-1])

    def sort(self, *, key=None, reverse=False):
        self._replace(sorted(self._items(), key=key, reverse=reverse))


class ValueProxy(HostObject):
    """Manager().Value(typecode, value): any picklable value (the typecode is kept, not
    checked, as CPython's manager does), read with get() or `.value`, replaced with set(),
    in a one-item list the host keeps."""

    def __init__(self, typecode, value, lock=True):
        self._bind(_host.call(_host.sync.list_new))
        self._typecode = typecode
        _host.call(_host.sync.list_insert, self._h, 0, _dumps(value))

    def _state(self):
        return self._typecode

    def _set_state(self, typecode):
        self._typecode = typecode

    def get(self):
        return _loads(_host.call(_host.sync.list_get, self._h, 0))

    def set(self, value):
        _host.call(_host.sync.list_set, self._h, 0, _dumps(value))

    value = property(get, set)

    def __repr__(self):
        return "<ValueProxy object, typeid 'Value' at %#x>" % id(self)

    def __str__(self):
        return "Value(%r, %r)" % (self._typecode, self.get())


class Namespace:
    """Manager().Namespace(): attributes kept in a managed dictionary."""

    def __init__(self, **kwds):
        object.__setattr__(self, "_dict", DictProxy(kwds))

    def __reduce__(self):
        return (_namespace, (self._dict,))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._dict[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._dict[name] = value

    def __delattr__(self, name):
        try:
            del self._dict[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        items = [(k, v) for k, v in self._dict.items() if not k.startswith("_")]
        return "Namespace(%s)" % ", ".join("%s=%r" % kv for kv in sorted(items))


def _namespace(d):
    ns = Namespace.__new__(Namespace)
    object.__setattr__(ns, "_dict", d)
    return ns


class SyncManager:
    """What Manager() returns. The host is the server: start(), shutdown() and the context
    manager do nothing more than mark the manager's state."""

    def __init__(self, address=None, authkey=None, *args, ctx=None, **kwargs):
        self._state = "initial"

    def start(self, initializer=None, initargs=()):
        self._state = "started"

    def connect(self):
        self._state = "started"

    def shutdown(self):
        self._state = "shutdown"

    def join(self, timeout=None):
        pass

    def __enter__(self):
        if self._state == "initial":
            self.start()
        return self

    def __exit__(self, *args):
        self.shutdown()

    def dict(self, *args, **kwargs):
        return DictProxy(*args, **kwargs)

    def list(self, sequence=()):
        return ListProxy(sequence)

    def Namespace(self, **kwds):
        return Namespace(**kwds)

    def Queue(self, maxsize=0):
        from .queues import Queue

        return Queue(maxsize)

    def JoinableQueue(self, maxsize=0):
        from .queues import JoinableQueue

        return JoinableQueue(maxsize)

    def Event(self):
        from .synchronize import Event

        return Event()

    def Lock(self):
        from .synchronize import Lock

        return Lock()

    def RLock(self):
        from .synchronize import RLock

        return RLock()

    def Semaphore(self, value=1):
        from .synchronize import Semaphore

        return Semaphore(value)

    def BoundedSemaphore(self, value=1):
        from .synchronize import BoundedSemaphore

        return BoundedSemaphore(value)

    def Condition(self, lock=None):
        from .synchronize import Condition

        return Condition(lock)

    def Barrier(self, parties, action=None, timeout=None):
        from .synchronize import Barrier

        return Barrier(parties, action, timeout)

    def Value(self, typecode, value, lock=True):
        return ValueProxy(typecode, value, lock)

    def Array(self, typecode, sequence, lock=True):
        from .sharedctypes import Array

        return Array(typecode, sequence, lock=lock)

    def Pool(self, *args, **kwargs):
        from .pool import Pool

        return Pool(*args, **kwargs)


BaseManager = SyncManager
