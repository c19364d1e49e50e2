"""Pool: worker processes fed by a task queue (multiprocessing.pool), built on Process and
Queue. There is no background thread: the pool makes progress (collects results, replaces
workers that ended) inside its own methods and those of its results."""

import itertools
import time

from . import connection
from .process import Process
from .queues import Queue

__all__ = ["Pool", "AsyncResult", "MapResult", "TimeoutError", "MaybeEncodingError"]

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"


class ProcessError(Exception):
    pass


class TimeoutError(ProcessError):
    pass


class MaybeEncodingError(Exception):
    """Wraps possible unpickleable errors, so they can be safely sent through the socket."""

    def __init__(self, exc, value):
        self.exc = repr(exc)
        self.value = repr(value)
        super().__init__(self.exc, self.value)

    def __str__(self):
        return "Error sending result: '%s'. Reason: '%s'" % (self.value, self.exc)

    def __repr__(self):
        return "<%s: %s>" % (self.__class__.__name__, self)


def mapstar(args):
    return list(map(*args))


def starmapstar(args):
    return list(itertools.starmap(args[0], args[1]))


def worker(inqueue, outqueue, initializer=None, initargs=(), maxtasks=None):
    """What a pool's worker process runs."""
    if initializer is not None:
        initializer(*initargs)
    completed = 0
    while maxtasks is None or completed < maxtasks:
        task = inqueue.get()
        if task is None:
            break
        job, i, func, args, kwds = task
        try:
            result = (True, func(*args, **kwds))
        except Exception as e:
            result = (False, e)
        try:
            outqueue.put((job, i, result))
        except Exception as e:
            wrapped = MaybeEncodingError(e, result[1])
            outqueue.put((job, i, (False, wrapped)))
        task = job = result = func = args = kwds = None
        completed += 1


class Pool:
    """A pool of worker processes to which jobs can be submitted."""

    _wrap_exception = True

    def __init__(self, processes=None, initializer=None, initargs=(), maxtasksperchild=None, context=None):
        from . import cpu_count

        self._state = RUN
        self._cache = {}
        self._job_counter = itertools.count()
        if processes is None:
            processes = cpu_count() or 1
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        if maxtasksperchild is not None:
            if not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0:
                raise ValueError("maxtasksperchild must be a positive int or None")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._processes = processes
        self._initializer = initializer
        self._initargs = initargs
        self._maxtasksperchild = maxtasksperchild
        self._inqueue = Queue()
        self._outqueue = Queue()
        self._pool = []
        self._repopulate()

    def _repopulate(self):
        for _ in range(self._processes - len(self._pool)):
            w = Process(
                target=worker,
                args=(self._inqueue, self._outqueue, self._initializer, self._initargs, self._maxtasksperchild),
            )
            w.name = w.name.replace("Process", "PoolWorker")
            w.daemon = True
            w.start()
            self._pool.append(w)

    def _maintain(self):
        """Joins the workers that ended and, while the pool runs, starts others instead."""
        ended = [w for w in self._pool if w.exitcode is not None]
        for w in ended:
            w.join()
            self._pool.remove(w)
        if ended and self._state == RUN:
            self._repopulate()

    def _pump(self, timeout=None):
        """Takes the results that are there, waiting up to `timeout` for one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._maintain()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            sentinels = [w.sentinel for w in self._pool]
            ready = connection.wait([self._outqueue] + sentinels, remaining)
            if self._outqueue in ready:
                break
            if not ready or (deadline is not None and time.monotonic() >= deadline):
                return
        while True:
            try:
                job, i, result = self._outqueue.get(False)
            except Exception:
                return
            r = self._cache.get(job)
            if r is not None:
                r._set(i, result)

    def _check_running(self):
        if self._state != RUN:
            raise ValueError("Pool not running")

    def _submit(self, tasks):
        for t in tasks:
            self._inqueue.put(t)

    def apply(self, func, args=(), kwds={}):
        return self.apply_async(func, args, kwds).get()

    def apply_async(self, func, args=(), kwds={}, callback=None, error_callback=None):
        self._check_running()
        result = ApplyResult(self, callback, error_callback)
        self._submit([(result._job, 0, func, args, kwds)])
        return result

    def map(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, mapstar, chunksize).get()

    def starmap(self, func, iterable, chunksize=None):
        return self._map_async(func, iterable, starmapstar, chunksize).get()

    def map_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, mapstar, chunksize, callback, error_callback)

    def starmap_async(self, func, iterable, chunksize=None, callback=None, error_callback=None):
        return self._map_async(func, iterable, starmapstar, chunksize, callback, error_callback)

    def _map_async(self, func, iterable, mapper, chunksize=None, callback=None, error_callback=None):
        self._check_running()
        if not hasattr(iterable, "__len__"):
            iterable = list(iterable)
        if chunksize is None:
            chunksize, extra = divmod(len(iterable), len(self._pool) * 4)
            if extra:
                chunksize += 1
        if len(iterable) == 0:
            chunksize = 0
        chunks = _get_tasks(func, iterable, chunksize)
        result = MapResult(self, chunksize, len(iterable), callback, error_callback)
        self._submit([(result._job, i, mapper, (x,), {}) for i, x in enumerate(chunks)])
        return result

    def imap(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, ordered=True)

    def imap_unordered(self, func, iterable, chunksize=1):
        return self._imap(func, iterable, chunksize, ordered=False)

    def _imap(self, func, iterable, chunksize, ordered):
        self._check_running()
        if chunksize < 1:
            raise ValueError("Chunksize must be 1+, not {0:n}".format(chunksize))
        result = IMapIterator(self, ordered)
        chunks = list(_get_tasks(func, iterable, chunksize))
        result._length = len(chunks)
        self._submit([(result._job, i, mapstar, (x,), {}) for i, x in enumerate(chunks)])
        return result

    def close(self):
        if self._state == RUN:
            self._state = CLOSE

    def terminate(self):
        self._state = TERMINATE
        for w in self._pool:
            if w.exitcode is None:
                w.terminate()
        for w in self._pool:
            w.join()

    def join(self):
        if self._state == RUN:
            raise ValueError("Pool is still running")
        elif self._state not in (CLOSE, TERMINATE):
            raise ValueError("In unknown state")
        if self._state == CLOSE:
            while self._cache and any(w.exitcode is None for w in self._pool):
                self._pump()
            for _ in self._pool:
                self._inqueue.put(None)
        for w in self._pool:
            w.join()

    def __enter__(self):
        self._check_running()
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.terminate()

    def __reduce__(self):
        raise NotImplementedError(
            "pool objects cannot be passed between processes or pickled"
        )

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__} state={self._state} pool_size={len(self._pool)}>"


def _get_tasks(func, it, size):
    it = iter(it)
    while True:
        x = tuple(itertools.islice(it, size))
        if not x:
            return
        yield (func, x)


class ApplyResult:
    def __init__(self, pool, callback, error_callback):
        self._pool = pool
        self._job = next(pool._job_counter)
        self._cache = pool._cache
        self._callback = callback
        self._error_callback = error_callback
        self._ready = False
        self._cache[self._job] = self

    def ready(self):
        if not self._ready:
            self._pool._pump(0)
        return self._ready

    def successful(self):
        if not self.ready():
            raise ValueError("{0!r} not ready".format(self))
        return self._success

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._pool._pump(remaining)

    def get(self, timeout=None):
        self.wait(timeout)
        if not self._ready:
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, i, obj):
        self._success, self._value = obj
        if self._callback and self._success:
            self._callback(self._value)
        if self._error_callback and not self._success:
            self._error_callback(self._value)
        self._ready = True
        del self._cache[self._job]


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    def __init__(self, pool, chunksize, length, callback, error_callback):
        super().__init__(pool, callback, error_callback)
        self._success = True
        self._value = [None] * length
        self._chunksize = chunksize
        if chunksize <= 0:
            self._number_left = 0
            self._ready = True
            del self._cache[self._job]
        else:
            self._number_left = length // chunksize + bool(length % chunksize)

    def _set(self, i, success_result):
        self._number_left -= 1
        success, result = success_result
        if success and self._success:
            self._value[i * self._chunksize : (i + 1) * self._chunksize] = result
            if self._number_left == 0:
                if self._callback:
                    self._callback(self._value)
                del self._cache[self._job]
                self._ready = True
        else:
            if not success and self._success:
                # only store first exception
                self._success = False
                self._value = result
            if self._number_left == 0:
                if self._error_callback:
                    self._error_callback(self._value)
                del self._cache[self._job]
                self._ready = True


class IMapIterator:
    def __init__(self, pool, ordered):
        self._pool = pool
        self._job = next(pool._job_counter)
        self._cache = pool._cache
        self._ordered = ordered
        self._items = {}
        self._arrived = []
        self._index = 0
        self._length = None
        self._buffer = []
        self._cache[self._job] = self

    def __iter__(self):
        return self

    def next(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            if self._length is not None and self._index >= self._length:
                self._cache.pop(self._job, None)
                raise StopIteration
            chunk = None
            if self._ordered and self._index in self._items:
                chunk = self._items.pop(self._index)
            elif not self._ordered and self._arrived:
                chunk = self._arrived.pop(0)
            if chunk is not None:
                self._index += 1
                success, value = chunk
                self._buffer.extend([(True, v) for v in value] if success else [(False, value)])
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError
            self._pool._pump(remaining)
        success, value = self._buffer.pop(0)
        if success:
            return value
        raise value

    __next__ = next

    def _set(self, i, obj):
        if self._ordered:
            self._items[i] = obj
        else:
            self._arrived.append(obj)
