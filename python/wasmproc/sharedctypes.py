"""Value, Array, RawValue and RawArray (multiprocessing.sharedctypes): numbers in a block of
bytes the host keeps (little-endian, the layout of the Rust guest SDK's `shared` module),
which every process holding it reads and writes at once. Each read or write of an element,
or of a slice, is one host call and is atomic; a read-modify-write (`v.value += 1`) is not:
hold `get_lock()` around it, as in CPython."""

import struct

from . import _host
from ._share import HostObject, check_spawning

__all__ = ["RawValue", "RawArray", "Value", "Array", "copy", "synchronized"]

# The typecodes (as CPython's array module and sharedctypes name them) and the ctypes names
# their reprs use. Sizes are the standard ones, those of CPython on wasm32 ('l' is 4 bytes).
_CTYPES = {
    "c": "c_char", "b": "c_byte", "B": "c_ubyte", "h": "c_short", "H": "c_ushort",
    "i": "c_int", "I": "c_uint", "l": "c_long", "L": "c_ulong", "q": "c_longlong",
    "Q": "c_ulonglong", "f": "c_float", "d": "c_double", "?": "c_bool",
}


def _code(typecode):
    if not isinstance(typecode, str) or typecode not in _CTYPES:
        raise TypeError(
            "wasmproc's sharedctypes take a typecode, one of %s, not %r" % (" ".join(_CTYPES), typecode)
        )
    return typecode


def _coerce(code, value):
    """`value` as ctypes keeps it: integers wrapped to the type's width, as ctypes does."""
    if code == "c":
        if isinstance(value, int) and 0 <= value < 256:
            return bytes([value])
        if isinstance(value, (bytes, bytearray)) and len(value) == 1:
            return bytes(value)
        raise TypeError("one character bytes, bytearray or integer expected")
    if code in "fd":
        if not isinstance(value, (int, float)):
            raise TypeError("must be real number, not %s" % type(value).__name__)
        return float(value)
    if code == "?":
        return bool(value)
    if not isinstance(value, int):
        raise TypeError("int expected instead of %s" % type(value).__name__)
    bits = struct.calcsize("<" + code) * 8
    value &= (1 << bits) - 1
    if code.islower() and value >> (bits - 1):
        value -= 1 << bits
    return value


class _Block(HostObject):
    """`length` items of typecode `code` in a host block."""

    def _new(self, code, length):
        self._code = code
        self._size = struct.calcsize("<" + code)
        self._length = length
        self._bind(_host.call(_host.sync.memory_new, self._size * length))

    def _state(self):
        return (self._code, self._length)

    def _set_state(self, state):
        self._code, self._length = state
        self._size = struct.calcsize("<" + self._code)

    def _read(self, start, n):
        data = _host.call(_host.sync.memory_read, self._h, start * self._size, n * self._size)
        return list(struct.unpack("<%d%s" % (n, self._code), data))

    def _write(self, start, values):
        values = [_coerce(self._code, v) for v in values]
        data = struct.pack("<%d%s" % (len(values), self._code), *values)
        _host.call(_host.sync.memory_write, self._h, start * self._size, data)


class RawValue(_Block):
    """A number (or one character) in shared memory, without a lock."""

    def __init__(self, typecode_or_type, *args):
        code = _code(typecode_or_type)
        self._new(code, 1)
        if args:
            (value,) = args
            self._write(0, [value])

    @property
    def value(self):
        return self._read(0, 1)[0]

    @value.setter
    def value(self, value):
        self._write(0, [value])

    def __repr__(self):
        return "%s(%r)" % (_CTYPES[self._code], self.value)


class RawArray(_Block):
    """An array of numbers (or characters) in shared memory, without a lock."""

    def __init__(self, typecode_or_type, size_or_initializer):
        code = _code(typecode_or_type)
        if isinstance(size_or_initializer, int):
            self._new(code, size_or_initializer)
        else:
            values = list(size_or_initializer)
            self._new(code, len(values))
            if values:
                self._write(0, values)

    def __len__(self):
        return self._length

    def _index(self, i):
        if not isinstance(i, int):
            raise TypeError("indices must be integers")
        if i < 0:
            i += self._length
        if not 0 <= i < self._length:
            raise IndexError("invalid index")
        return i

    def _out(self, items):
        return b"".join(items) if self._code == "c" else items

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(self._length)
            if step == 1:
                return self._out(self._read(start, max(0, stop - start)))
            items = self._read(0, self._length)
            return self._out(items[start:stop:step])
        return self._read(self._index(i), 1)[0]

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            start, stop, step = i.indices(self._length)
            values = list(value) if self._code != "c" else [value[k : k + 1] for k in range(len(value))]
            indices = range(start, stop, step)
            if len(values) != len(indices):
                raise ValueError("Can only assign sequence of same size")
            if step == 1:
                if values:
                    self._write(start, values)
                return
            items = self._read(0, self._length)
            for k, v in zip(indices, values):
                items[k] = v
            self._write(0, items)
            return
        self._write(self._index(i), [value])

    def __iter__(self):
        items = self._read(0, self._length)
        if self._code == "c":
            return iter([bytes([b]) for b in b"".join(items)])
        return iter(items)

    @property
    def value(self):
        """A character array's bytes up to the first NUL (ctypes' `value`)."""
        if self._code != "c":
            raise AttributeError("%r object has no attribute 'value'" % type(self).__name__)
        return self[:].split(b"\0", 1)[0]

    @value.setter
    def value(self, value):
        if self._code != "c":
            raise AttributeError("%r object has no attribute 'value'" % type(self).__name__)
        if len(value) > self._length:
            raise ValueError("byte string too long")
        data = bytes(value) + (b"\0" if len(value) < self._length else b"")
        self[: len(data)] = data

    @property
    def raw(self):
        if self._code != "c":
            raise AttributeError("%r object has no attribute 'raw'" % type(self).__name__)
        return self[:]

    def __repr__(self):
        return "<%s_Array_%d>" % (_CTYPES[self._code], self._length)


class Synchronized:
    """A RawValue with the lock that its `value` is read and written under."""

    def __init__(self, obj, lock=None, ctx=None):
        self._obj = obj
        if lock is None:
            from .synchronize import RLock

            lock = RLock()
        self._lock = lock
        self.acquire = lock.acquire
        self.release = lock.release

    def __reduce__(self):
        check_spawning(self)
        return (type(self), (self._obj, self._lock))

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def get_obj(self):
        return self._obj

    def get_lock(self):
        return self._lock

    def __repr__(self):
        return "<%s wrapper for %r>" % (type(self).__name__, self._obj)

    @property
    def value(self):
        with self._lock:
            return self._obj.value

    @value.setter
    def value(self, value):
        with self._lock:
            self._obj.value = value


class SynchronizedArray(Synchronized):
    """A RawArray whose items are read and written under its lock."""

    def __len__(self):
        return len(self._obj)

    def __getitem__(self, i):
        with self._lock:
            return self._obj[i]

    def __setitem__(self, i, value):
        with self._lock:
            self._obj[i] = value

    def __iter__(self):
        with self._lock:
            return iter(self._obj)

    @property
    def value(self):
        with self._lock:
            return self._obj.value

    @value.setter
    def value(self, value):
        with self._lock:
            self._obj.value = value

    @property
    def raw(self):
        with self._lock:
            return self._obj.raw


def synchronized(obj, lock=None, ctx=None):
    if isinstance(obj, RawArray):
        return SynchronizedArray(obj, lock)
    if isinstance(obj, RawValue):
        return Synchronized(obj, lock)
    raise TypeError("synchronized() takes a RawValue or RawArray, not %s" % type(obj).__name__)


def _with_lock(obj, lock):
    if lock is False:
        return obj
    if lock in (True, None):
        lock = None
    elif not hasattr(lock, "acquire"):
        raise AttributeError("%r has no method 'acquire'" % lock)
    return synchronized(obj, lock)


def Value(typecode_or_type, *args, lock=True, ctx=None):
    """A synchronized shared number (with lock=False, a RawValue)."""
    return _with_lock(RawValue(typecode_or_type, *args), lock)


def Array(typecode_or_type, size_or_initializer, *, lock=True, ctx=None):
    """A synchronized shared array (with lock=False, a RawArray)."""
    return _with_lock(RawArray(typecode_or_type, size_or_initializer), lock)


def copy(obj):
    """A new RawValue or RawArray with `obj`'s contents."""
    if isinstance(obj, RawArray):
        return RawArray(obj._code, obj[:] if obj._code != "c" else list(obj))
    return RawValue(obj._code, obj.value)
