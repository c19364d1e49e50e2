"""Queue, SimpleQueue and JoinableQueue over the host's queues (multiprocessing.queues)."""

import pickle
from queue import Empty, Full

from . import _host
from ._share import HostObject, close as _close

__all__ = ["Queue", "SimpleQueue", "JoinableQueue"]


class Queue(HostObject):
    def __init__(self, maxsize=0, *, ctx=None):
        if maxsize <= 0:
            maxsize = 0
        self._maxsize = maxsize
        self._closed = False
        self._bind(_host.call(_host.sync.queue_new, min(maxsize, 2**32 - 1)))

    def _state(self):
        return self._maxsize

    def _set_state(self, state):
        self._maxsize = state
        self._closed = False

    @property
    def _wait_id(self):
        return self._h

    def _check_closed(self):
        if self._closed:
            raise ValueError(f"Queue {self!r} is closed")

    def put(self, obj, block=True, timeout=None):
        self._check_closed()
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        if block and timeout is None:
            if _host.call(_host.sync.queue_try_put, self._h, data):
                return
        _host.call(_host.sync.queue_put, self._h, data, bool(block), _host.nanos(timeout) if block else None)

    def get(self, block=True, timeout=None):
        self._check_closed()
        data = _host.call(_host.sync.queue_try_get, self._h)
        if data is None:
            if not block:
                raise Empty
            data = _host.call(_host.sync.queue_get, self._h, True, _host.nanos(timeout))
        return pickle.loads(data)

    def qsize(self):
        if self._closed:
            raise OSError("handle is closed")
        return _host.call(_host.sync.queue_qsize, self._h)

    def empty(self):
        return self.qsize() == 0

    def full(self):
        return self._maxsize > 0 and self.qsize() >= self._maxsize

    def get_nowait(self):
        return self.get(False)

    def put_nowait(self, obj):
        return self.put(obj, False)

    def close(self):
        if not self._closed:
            self._closed = True
            _close(self._h)

    def join_thread(self):
        # Items are in the host's queue when put returns: there is no feeder thread.
        assert self._closed, "Queue {0!r} not closed".format(self)

    def cancel_join_thread(self):
        pass


class SimpleQueue(Queue):
    """multiprocessing.SimpleQueue: put, get, empty and close; unbounded."""

    def __init__(self, *, ctx=None):
        super().__init__(0)

    def _check_closed(self):
        if self._closed:
            raise OSError("handle is closed")

    def put(self, obj):
        super().put(obj)

    def get(self):
        return super().get()


class JoinableQueue(Queue):
    """A Queue whose consumers call task_done() for each item taken; join() waits until
    every item put has been processed. The host counts the unfinished tasks."""

    def __init__(self, maxsize=0, *, ctx=None):
        if maxsize <= 0:
            maxsize = 0
        self._maxsize = maxsize
        self._closed = False
        self._bind(_host.call(_host.sync.joinable_queue_new, min(maxsize, 2**32 - 1)))

    def task_done(self):
        self._check_closed()
        _host.call(_host.sync.queue_task_done, self._h)

    def join(self):
        self._check_closed()
        _host.call(_host.sync.queue_join, self._h, None)
