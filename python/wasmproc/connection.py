"""Pipe, Connection and wait over the host's connections (multiprocessing.connection)."""

import pickle

from . import _host
from ._share import HostObject, close as _close

__all__ = ["Connection", "Pipe", "wait"]


class Connection(HostObject):
    def __init__(self, handle, readable=True, writable=True):
        if not readable and not writable:
            raise ValueError("at least one of `readable` and `writable` must be True")
        self._bind(handle)
        self._readable = readable
        self._writable = writable
        self._closed = False

    def _state(self):
        return (self._readable, self._writable)

    def _set_state(self, state):
        self._readable, self._writable = state
        self._closed = False

    @property
    def _wait_id(self):
        self._check_closed()
        return self._h

    def _check_closed(self):
        if self._closed:
            raise OSError("handle is closed")

    def _check_readable(self):
        if not self._readable:
            raise OSError("connection is write-only")

    def _check_writable(self):
        if not self._writable:
            raise OSError("connection is read-only")

    @property
    def closed(self):
        return self._closed

    @property
    def readable(self):
        return self._readable

    @property
    def writable(self):
        return self._writable

    def fileno(self):
        self._check_closed()
        return self._h

    def close(self):
        if not self._closed:
            self._closed = True
            _close(self._h)

    def send_bytes(self, buf, offset=0, size=None):
        self._check_closed()
        self._check_writable()
        m = memoryview(buf)
        if m.itemsize > 1:
            m = m.cast("B")
        n = m.nbytes
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        _host.call(_host.sync.conn_send, self._h, bytes(m[offset : offset + size]))

    def send(self, obj):
        self._check_closed()
        self._check_writable()
        _host.call(_host.sync.conn_send, self._h, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def recv_bytes(self, maxlength=None):
        self._check_closed()
        self._check_readable()
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        data = _host.call(_host.sync.conn_recv, self._h)
        if maxlength is not None and len(data) > maxlength:
            self.close()
            raise OSError("bad message length")
        return data

    def recv_bytes_into(self, buf, offset=0):
        self._check_closed()
        self._check_readable()
        data = _host.call(_host.sync.conn_recv, self._h)
        with memoryview(buf) as m:
            itemsize = m.itemsize
            bytesize = itemsize * len(m)
            if offset < 0:
                raise ValueError("negative offset")
            elif offset > bytesize:
                raise ValueError("offset too large")
            if bytesize - offset < len(data):
                raise BufferTooShort(data)
            m.cast("B")[offset : offset + len(data)] = data
            return len(data)

    def recv(self):
        self._check_closed()
        self._check_readable()
        return pickle.loads(_host.call(_host.sync.conn_recv, self._h))

    def poll(self, timeout=0.0):
        self._check_closed()
        self._check_readable()
        return _host.call(_host.sync.conn_poll, self._h, _host.nanos(timeout))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, exc_tb):
        self.close()


class BufferTooShort(Exception):
    pass


def Pipe(duplex=True):
    """Returns a pair (conn1, conn2) of Connection objects; one-way: conn1 only receives
    and conn2 only sends."""
    a, b = _host.call(_host.sync.pipe_new, bool(duplex))
    if duplex:
        return Connection(a), Connection(b)
    return Connection(a, writable=False), Connection(b, readable=False)


def wait(object_list, timeout=None):
    """Waits until one or more of the objects in `object_list` is ready (a Connection or
    Queue with something to read, or a process sentinel whose process ended); returns
    those that are, in the order given (an empty list after a timeout)."""
    objects = list(object_list)
    ids = []
    for obj in objects:
        ids.append(obj if isinstance(obj, int) else obj._wait_id)
    ready = set(_host.call(_host.process.wait, ids, _host.nanos(timeout)))
    return [obj for obj, i in zip(objects, ids) if i in ready]
