"""A port of part of CPython's Lib/test/_test_multiprocessing.py (_TestProcess,
_TestSubclassingProcess, _TestQueue, _TestLock, _TestSemaphore, _TestEvent, _TestConnection,
_TestPool) for wasmproc's Python guests, rewritten without unittest (which the program
would have to carry). `app.wasm GROUP` runs the tests of GROUP and prints one line per test:
`<name> ok`, or `<name> FAIL: <why>` and exit code 1 at the end."""

import multiprocessing
import queue as pyqueue
import signal
import sys
import time
from multiprocessing import connection

TIMEOUT1, TIMEOUT2, TIMEOUT3 = 0.1, 0.1, 0.1
DELTA = 0.1


class Failed(Exception):
    pass


def check(cond, what="check failed"):
    if not cond:
        raise Failed(what)


def eq(a, b):
    if a != b:
        raise Failed(f"{a!r} != {b!r}")


def raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    except BaseException as e:
        raise Failed(f"{fn!r} raised {type(e).__name__}: {e}, not {exc}")
    raise Failed(f"{fn!r} did not raise {exc}")


class TimingWrapper:
    def __init__(self, func):
        self.func = func
        self.elapsed = None

    def __call__(self, *args, **kwds):
        t = time.monotonic()
        try:
            return self.func(*args, **kwds)
        finally:
            self.elapsed = time.monotonic() - t


def almost(elapsed, expected):
    # CPython's assertTimingAlmostEqual allows 0.1 s either way; hosts on a busy CI machine
    # need a little more above.
    check(expected - 0.05 <= elapsed <= expected + 1.0, f"took {elapsed:.3f} s, not {expected} s")


# --- _TestProcess ---------------------------------------------------------------------

def _test(q, *args, **kwds):
    current = multiprocessing.current_process()
    q.put(args)
    q.put(kwds)
    q.put(current.name)
    q.put(bytes(current.authkey))
    q.put(current.pid)


def test_process():
    q = multiprocessing.Queue(1)
    args = (q, 1, 2)
    kwargs = {"hello": 23, "bye": 2.54}
    p = multiprocessing.Process(target=_test, args=args, kwargs=kwargs, name="SomeProcess")
    p.daemon = True
    current = multiprocessing.current_process()
    eq(p.authkey, current.authkey)
    eq(p.is_alive(), False)
    eq(p.daemon, True)
    check(p not in multiprocessing.active_children())
    check(type(multiprocessing.active_children()) is list)
    eq(p.exitcode, None)
    p.start()
    eq(p.exitcode, None)
    eq(p.is_alive(), True)
    check(p in multiprocessing.active_children())
    eq(q.get(), args[1:])
    eq(q.get(), kwargs)
    eq(q.get(), p.name)
    eq(q.get(), current.authkey)
    eq(q.get(), p.pid)
    p.join()
    eq(p.exitcode, 0)
    eq(p.is_alive(), False)
    check(p not in multiprocessing.active_children())


def _test_args(q, arg):
    q.put(arg)


def test_args_argument():
    for args in (1, "str", [1], (1,)):
        for args_type in (list, tuple):
            q = multiprocessing.Queue(1)
            p = multiprocessing.Process(target=_test_args, args=args_type((q, args)))
            p.daemon = True
            p.start()
            eq(q.get(), args)
            p.join()


def _noop():
    pass


def test_daemon_argument():
    proc0 = multiprocessing.Process(target=_noop)
    eq(proc0.daemon, multiprocessing.current_process().daemon)
    proc1 = multiprocessing.Process(target=_noop, daemon=True)
    check(proc1.daemon)
    proc2 = multiprocessing.Process(target=_noop, daemon=False)
    check(not proc2.daemon)


def _test_send_parent_process(wconn):
    from multiprocessing.process import parent_process

    wconn.send([parent_process().pid, parent_process().name])


def test_parent_process_attributes():
    check(multiprocessing.parent_process() is None)
    rconn, wconn = multiprocessing.Pipe(duplex=False)
    p = multiprocessing.Process(target=_test_send_parent_process, args=(wconn,))
    p.start()
    p.join()
    parent_pid, parent_name = rconn.recv()
    eq(parent_pid, multiprocessing.current_process().pid)
    eq(parent_name, multiprocessing.current_process().name)


def _test_create_grandchild_process(wconn):
    p = multiprocessing.Process(target=_test_report_parent_status, args=(wconn,))
    p.start()
    time.sleep(300)


def _test_report_parent_status(wconn):
    from multiprocessing.process import parent_process

    wconn.send("alive" if parent_process().is_alive() else "not alive")
    parent_process().join(timeout=30)
    wconn.send("alive" if parent_process().is_alive() else "not alive")


def test_parent_process():
    rconn, wconn = multiprocessing.Pipe(duplex=False)
    p = multiprocessing.Process(target=_test_create_grandchild_process, args=(wconn,))
    p.start()
    check(rconn.poll(timeout=30), "Could not communicate with child process")
    eq(rconn.recv(), "alive")
    p.terminate()
    p.join()
    check(rconn.poll(timeout=30), "Could not communicate with child process")
    eq(rconn.recv(), "not alive")


def _sleep_some():
    time.sleep(100)


def _sleep_some_event(event):
    event.set()
    time.sleep(100)


def _test_sleep(delay):
    time.sleep(delay)


def _kill_process(meth):
    event = multiprocessing.Event()
    p = multiprocessing.Process(target=_sleep_some_event, args=(event,))
    p.daemon = True
    p.start()
    eq(p.is_alive(), True)
    check(p in multiprocessing.active_children())
    eq(p.exitcode, None)
    join = TimingWrapper(p.join)
    eq(join(0), None)
    almost(join.elapsed, 0.0)
    eq(p.is_alive(), True)
    eq(join(-1), None)
    almost(join.elapsed, 0.0)
    eq(p.is_alive(), True)
    check(event.wait(30), "event not signaled in 30 seconds")
    meth(p)
    eq(join(), None)
    almost(join.elapsed, 0.0)
    eq(p.is_alive(), False)
    check(p not in multiprocessing.active_children())
    p.join()
    return p.exitcode


def test_terminate():
    eq(_kill_process(multiprocessing.Process.terminate), -signal.SIGTERM)


def test_kill():
    eq(_kill_process(multiprocessing.Process.kill), -signal.SIGKILL)


def test_cpu_count():
    cpus = multiprocessing.cpu_count()
    check(type(cpus) is int)
    check(cpus >= 1)


def test_active_children():
    eq(type(multiprocessing.active_children()), list)
    event = multiprocessing.Event()
    p = multiprocessing.Process(target=event.wait, args=())
    check(p not in multiprocessing.active_children())
    try:
        p.daemon = True
        p.start()
        check(p in multiprocessing.active_children())
    finally:
        event.set()
    p.join()
    check(p not in multiprocessing.active_children())


def _test_recursion(wconn, id):
    wconn.send(id)
    if len(id) < 2:
        for i in range(2):
            p = multiprocessing.Process(target=_test_recursion, args=(wconn, id + [i]))
            p.start()
            p.join()


def test_recursion():
    rconn, wconn = multiprocessing.Pipe(duplex=False)
    _test_recursion(wconn, [])
    time.sleep(DELTA)
    result = []
    while rconn.poll():
        result.append(rconn.recv())
    eq(result, [[], [0], [0, 0], [0, 1], [1], [1, 0], [1, 1]])


def _test_sentinel(event):
    event.wait(10.0)


def test_sentinel():
    event = multiprocessing.Event()
    p = multiprocessing.Process(target=_test_sentinel, args=(event,))
    raises(ValueError, lambda: p.sentinel)
    p.start()
    sentinel = p.sentinel
    check(isinstance(sentinel, int))
    check(not connection.wait([sentinel], timeout=0.0))
    event.set()
    p.join()
    check(connection.wait([sentinel], timeout=1))


def _test_close(rc=0, q=None):
    if q is not None:
        q.get()
    sys.exit(rc)


def test_close():
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=_test_close, kwargs={"q": q})
    p.daemon = True
    p.start()
    eq(p.is_alive(), True)
    raises(ValueError, p.close)
    q.put(None)
    p.join()
    eq(p.is_alive(), False)
    eq(p.exitcode, 0)
    p.close()
    raises(ValueError, p.is_alive)
    raises(ValueError, p.join)
    raises(ValueError, p.terminate)
    p.close()


def test_many_processes():
    N = 5
    procs = [multiprocessing.Process(target=_test_sleep, args=(0.01,)) for i in range(N)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    for p in procs:
        eq(p.exitcode, 0)
    procs = [multiprocessing.Process(target=_sleep_some) for i in range(N)]
    for p in procs:
        p.start()
    time.sleep(0.001)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join()
    for p in procs:
        eq(p.exitcode, -signal.SIGTERM)


class DummyCallable:
    def __call__(self, q, c):
        assert isinstance(c, DummyCallable)
        q.put(5)


def test_lose_target_ref():
    c = DummyCallable()
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=c, args=(q, c))
    del c
    p.start()
    p.join()
    eq(q.get(), 5)


def test_start_twice_and_errors():
    # The errors CPython's Process raises, with its messages.
    p = multiprocessing.Process(target=_noop)
    e = raises(AssertionError, p.join)
    eq(str(e), "can only join a started process")
    p.start()
    e = raises(AssertionError, p.start)
    eq(str(e), "cannot start a process twice")
    e = raises(AssertionError, setattr, p, "daemon", True)
    eq(str(e), "process has already started")
    p.join()
    p.close()
    e = raises(ValueError, p.start)
    eq(str(e), "process object is closed")
    e = raises(AssertionError, multiprocessing.current_process().join)
    eq(str(e), "can only join a child process")
    e = raises(AssertionError, multiprocessing.Process, group=1)
    eq(str(e), "group argument must be None for now")


def _name_of_child(q):
    q.put(multiprocessing.current_process().name)
    p = multiprocessing.Process(target=_noop)
    q.put(p.name)


def test_names():
    q = multiprocessing.Queue()
    eq(multiprocessing.current_process().name, "MainProcess")
    p = multiprocessing.Process(target=_name_of_child, args=(q,))
    check(p.name.startswith("Process-"), p.name)
    n = p.name
    p.start()
    eq(q.get(), n)
    eq(q.get(), n[len("Process"):].join(["Process", ""]) + ":1")
    p.join()
    p.name = "renamed"
    eq(p.name, "renamed")


def _daemon_child():
    p = multiprocessing.Process(target=_noop)
    p.start()


def test_daemon_children():
    p = multiprocessing.Process(target=_daemon_child, daemon=True)
    p.start()
    p.join()
    eq(p.exitcode, 1)


# --- _TestSubclassingProcess ------------------------------------------------------------

class _UpperCaser(multiprocessing.Process):
    def __init__(self):
        multiprocessing.Process.__init__(self)
        self.child_conn, self.parent_conn = multiprocessing.Pipe()

    def run(self):
        self.parent_conn.close()
        for s in iter(self.child_conn.recv, None):
            self.child_conn.send(s.upper())
        self.child_conn.close()

    def submit(self, s):
        assert type(s) is str
        self.parent_conn.send(s)
        return self.parent_conn.recv()

    def stop(self):
        self.parent_conn.send(None)
        self.parent_conn.close()
        self.child_conn.close()


def test_subclassing():
    uppercaser = _UpperCaser()
    uppercaser.daemon = True
    uppercaser.start()
    eq(uppercaser.submit("hello"), "HELLO")
    eq(uppercaser.submit("world"), "WORLD")
    uppercaser.stop()
    uppercaser.join()


def test_sys_exit():
    cases = [((True,), 1), ((False,), 0), ((8,), 8), ((None,), 0), ((), 0)]
    for args, expected in cases:
        p = multiprocessing.Process(target=sys.exit, args=args)
        p.daemon = True
        p.start()
        p.join()
        eq(p.exitcode, expected)


# --- _TestQueue -------------------------------------------------------------------------

def _test_put(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    for i in range(6):
        queue.get()
    parent_can_continue.set()


def test_put():
    MAXSIZE = 6
    queue = multiprocessing.Queue(maxsize=MAXSIZE)
    child_can_start = multiprocessing.Event()
    parent_can_continue = multiprocessing.Event()
    proc = multiprocessing.Process(target=_test_put, args=(queue, child_can_start, parent_can_continue))
    proc.daemon = True
    proc.start()
    eq(queue.empty(), True)
    eq(queue.full(), False)
    queue.put(1)
    queue.put(2, True)
    queue.put(3, True, None)
    queue.put(4, False)
    queue.put(5, False, None)
    queue.put_nowait(6)
    eq(queue.empty(), False)
    eq(queue.full(), True)
    put = TimingWrapper(queue.put)
    put_nowait = TimingWrapper(queue.put_nowait)
    raises(pyqueue.Full, put, 7, False)
    almost(put.elapsed, 0)
    raises(pyqueue.Full, put, 7, False, None)
    almost(put.elapsed, 0)
    raises(pyqueue.Full, put_nowait, 7)
    almost(put_nowait.elapsed, 0)
    raises(pyqueue.Full, put, 7, True, TIMEOUT1)
    almost(put.elapsed, TIMEOUT1)
    raises(pyqueue.Full, put, 7, False, TIMEOUT2)
    almost(put.elapsed, 0)
    raises(pyqueue.Full, put, 7, True, timeout=TIMEOUT3)
    almost(put.elapsed, TIMEOUT3)
    child_can_start.set()
    parent_can_continue.wait()
    eq(queue.empty(), True)
    eq(queue.full(), False)
    proc.join()


def _test_get(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    for i in range(1, 6):
        queue.put(i)
    parent_can_continue.set()


def test_get():
    queue = multiprocessing.Queue()
    child_can_start = multiprocessing.Event()
    parent_can_continue = multiprocessing.Event()
    proc = multiprocessing.Process(target=_test_get, args=(queue, child_can_start, parent_can_continue))
    proc.daemon = True
    proc.start()
    eq(queue.empty(), True)
    child_can_start.set()
    parent_can_continue.wait()
    eq(queue.empty(), False)
    eq(queue.get_nowait(), 1)
    eq(queue.get(True, None), 2)
    eq(queue.get(True), 3)
    eq(queue.get(timeout=1), 4)
    eq(queue.get(), 5)
    eq(queue.empty(), True)
    get = TimingWrapper(queue.get)
    get_nowait = TimingWrapper(queue.get_nowait)
    raises(pyqueue.Empty, get, False)
    almost(get.elapsed, 0)
    raises(pyqueue.Empty, get, False, None)
    almost(get.elapsed, 0)
    raises(pyqueue.Empty, get_nowait)
    almost(get_nowait.elapsed, 0)
    raises(pyqueue.Empty, get, True, TIMEOUT1)
    almost(get.elapsed, TIMEOUT1)
    raises(pyqueue.Empty, get, False, TIMEOUT2)
    almost(get.elapsed, 0)
    raises(pyqueue.Empty, get, timeout=TIMEOUT3)
    almost(get.elapsed, TIMEOUT3)
    proc.join()


def _test_fork(queue):
    for i in range(10, 20):
        queue.put(i)


def test_fork():
    queue = multiprocessing.Queue()
    for i in range(10):
        queue.put(i)
    p = multiprocessing.Process(target=_test_fork, args=(queue,))
    p.daemon = True
    p.start()
    for i in range(20):
        eq(queue.get(), i)
    raises(pyqueue.Empty, queue.get, False)
    p.join()


def test_qsize():
    q = multiprocessing.Queue()
    eq(q.qsize(), 0)
    q.put(1)
    eq(q.qsize(), 1)
    q.put(5)
    eq(q.qsize(), 2)
    q.get()
    eq(q.qsize(), 1)
    q.get()
    eq(q.qsize(), 0)


def _test_task_done(q):
    for obj in iter(q.get, None):
        time.sleep(DELTA)
        q.task_done()


def test_task_done():
    queue = multiprocessing.JoinableQueue()
    workers = [multiprocessing.Process(target=_test_task_done, args=(queue,)) for i in range(4)]
    for p in workers:
        p.daemon = True
        p.start()
    for i in range(10):
        queue.put(i)
    queue.join()
    for p in workers:
        queue.put(None)
    for p in workers:
        p.join()


def test_timeout():
    q = multiprocessing.Queue()
    start = time.monotonic()
    raises(pyqueue.Empty, q.get, True, 0.200)
    delta = time.monotonic() - start
    check(delta >= 0.100)


def test_closed_queue_put_get_exceptions():
    for q in multiprocessing.Queue(), multiprocessing.JoinableQueue():
        q.close()
        e = raises(ValueError, q.put, "foo")
        check("is closed" in str(e))
        e = raises(ValueError, q.get)
        check("is closed" in str(e))


def test_queue_in_queue():
    # Sync objects travel only in a child's start arguments, as in CPython.
    q = multiprocessing.Queue()
    e = raises(RuntimeError, q.put, multiprocessing.Lock())
    eq(str(e), "Lock objects should only be shared between processes through inheritance")


# --- _TestLock, _TestSemaphore ----------------------------------------------------------

def test_lock():
    lock = multiprocessing.Lock()
    eq(lock.acquire(), True)
    eq(lock.acquire(False), False)
    eq(lock.release(), None)
    e = raises(ValueError, lock.release)
    eq(str(e), "semaphore or lock released too many times")


def test_rlock():
    lock = multiprocessing.RLock()
    eq(lock.acquire(), True)
    eq(lock.acquire(), True)
    eq(lock.acquire(), True)
    eq(lock.release(), None)
    eq(lock.release(), None)
    eq(lock.release(), None)
    raises((AssertionError, RuntimeError), lock.release)


def test_lock_context():
    with multiprocessing.Lock():
        pass


def _hold_lock(lock, event, wait):
    lock.acquire()
    event.set()
    wait.wait(30)
    lock.release()


def test_lock_between_processes():
    lock = multiprocessing.Lock()
    event = multiprocessing.Event()
    go = multiprocessing.Event()
    p = multiprocessing.Process(target=_hold_lock, args=(lock, event, go))
    p.start()
    check(event.wait(30))
    acquire = TimingWrapper(lock.acquire)
    eq(acquire(True, TIMEOUT1), False)
    almost(acquire.elapsed, TIMEOUT1)
    go.set()
    eq(lock.acquire(timeout=30), True)
    lock.release()
    p.join()


def _test_semaphore(sem):
    eq(sem.get_value(), 2)
    eq(sem.acquire(), True)
    eq(sem.get_value(), 1)
    eq(sem.acquire(), True)
    eq(sem.get_value(), 0)
    eq(sem.acquire(False), False)
    eq(sem.get_value(), 0)
    eq(sem.release(), None)
    eq(sem.get_value(), 1)
    eq(sem.release(), None)
    eq(sem.get_value(), 2)


def test_semaphore():
    sem = multiprocessing.Semaphore(2)
    _test_semaphore(sem)
    eq(sem.release(), None)
    eq(sem.get_value(), 3)
    eq(sem.release(), None)
    eq(sem.get_value(), 4)


def test_bounded_semaphore():
    sem = multiprocessing.BoundedSemaphore(2)
    _test_semaphore(sem)
    raises(ValueError, sem.release)
    eq(sem.get_value(), 2)


def test_semaphore_timeout():
    sem = multiprocessing.Semaphore(0)
    acquire = TimingWrapper(sem.acquire)
    eq(acquire(False), False)
    almost(acquire.elapsed, 0.0)
    eq(acquire(False, None), False)
    almost(acquire.elapsed, 0.0)
    eq(acquire(False, TIMEOUT1), False)
    almost(acquire.elapsed, 0)
    eq(acquire(True, TIMEOUT2), False)
    almost(acquire.elapsed, TIMEOUT2)
    eq(acquire(timeout=TIMEOUT3), False)
    almost(acquire.elapsed, TIMEOUT3)


# --- _TestEvent -------------------------------------------------------------------------

def _test_event(event):
    time.sleep(TIMEOUT2)
    event.set()


def test_event():
    event = multiprocessing.Event()
    wait = TimingWrapper(event.wait)
    eq(event.is_set(), False)
    eq(wait(0.0), False)
    almost(wait.elapsed, 0.0)
    eq(wait(TIMEOUT1), False)
    almost(wait.elapsed, TIMEOUT1)
    event.set()
    eq(event.is_set(), True)
    eq(wait(), True)
    almost(wait.elapsed, 0.0)
    eq(wait(TIMEOUT1), True)
    almost(wait.elapsed, 0.0)
    event.clear()
    p = multiprocessing.Process(target=_test_event, args=(event,))
    p.daemon = True
    p.start()
    eq(wait(), True)
    p.join()


# --- _TestConnection --------------------------------------------------------------------

def _echo(conn):
    for msg in iter(conn.recv_bytes, b""):
        conn.send_bytes(msg)
    conn.close()


def test_connection():
    conn, child_conn = multiprocessing.Pipe()
    p = multiprocessing.Process(target=_echo, args=(child_conn,))
    p.daemon = True
    p.start()
    seq = [1, 2.25, None]
    msg = "hello world".encode()
    longmsg = msg * 10
    eq(conn.send(seq), None)
    eq(conn.recv(), seq)
    eq(conn.send_bytes(msg), None)
    eq(conn.recv_bytes(), msg)
    eq(conn.send_bytes(longmsg, 5, 3), None)
    eq(conn.recv_bytes(), longmsg[5:8])
    poll = TimingWrapper(conn.poll)
    eq(poll(), False)
    almost(poll.elapsed, 0)
    eq(poll(-1), False)
    almost(poll.elapsed, 0)
    eq(poll(TIMEOUT1), False)
    almost(poll.elapsed, TIMEOUT1)
    conn.send(None)
    time.sleep(0.1)
    eq(poll(TIMEOUT1), True)
    almost(poll.elapsed, 0)
    eq(conn.recv(), None)
    really_big_msg = b"X" * (1024 * 1024 * 4)
    conn.send_bytes(really_big_msg)
    eq(conn.recv_bytes(), really_big_msg)
    conn.send_bytes(b"")  # tell child to quit
    child_conn.close()
    raises(EOFError, conn.recv)
    p.join()


def test_duplex_false():
    reader, writer = multiprocessing.Pipe(duplex=False)
    eq(writer.send(1), None)
    eq(reader.recv(), 1)
    e = raises(OSError, reader.send, 2)
    eq(str(e), "connection is read-only")
    e = raises(OSError, writer.recv)
    eq(str(e), "connection is write-only")
    e = raises(OSError, writer.poll)
    eq(str(e), "connection is write-only")


def test_wait():
    a, b = multiprocessing.Pipe()
    q = multiprocessing.Queue()
    eq(connection.wait([a, b, q], timeout=0), [])
    b.send("x")
    q.put(1)
    eq(connection.wait([a, b, q], timeout=1), [a, q])


# --- _TestPool --------------------------------------------------------------------------

def sqr(x, wait=0.0):
    time.sleep(wait)
    return x * x


def mul(x, y):
    return x * y


def raising():
    raise KeyError("key")


def identity(x):
    return x


def test_pool():
    pool = multiprocessing.Pool(4)
    # test_apply
    eq(pool.apply(sqr, (5,)), sqr(5))
    eq(pool.apply(sqr, (), {"x": 3}), sqr(x=3))
    # test_map
    eq(pool.map(sqr, list(range(10))), list(map(sqr, list(range(10)))))
    eq(pool.map(sqr, list(range(100)), chunksize=20), list(map(sqr, list(range(100)))))
    # test_starmap
    psmap = pool.starmap
    tuples = list(zip(range(10), range(9, -1, -1)))
    eq(psmap(mul, tuples), [x * y for x, y in tuples])
    tuples = list(zip(range(100), range(99, -1, -1)))
    eq(psmap(mul, tuples, chunksize=20), [x * y for x, y in tuples])
    eq(pool.starmap_async(mul, tuples).get(), [x * y for x, y in tuples])
    # test_map_async
    eq(pool.map_async(sqr, list(range(10))).get(), list(map(sqr, list(range(10)))))
    # test_map_async_callbacks
    call_args = []
    pool.map_async(int, ["1"], callback=call_args.append, error_callback=call_args.append).wait()
    eq(1, len(call_args))
    eq([1], call_args[0])
    pool.map_async(int, ["a"], callback=call_args.append, error_callback=call_args.append).wait()
    eq(2, len(call_args))
    check(isinstance(call_args[1], ValueError))
    # test_empty_iterable
    eq(pool.map(sqr, []), [])
    eq(list(pool.imap(sqr, [])), [])
    eq(list(pool.imap_unordered(sqr, [])), [])
    eq(pool.map_async(sqr, []).get(), [])
    # test_async
    res = pool.apply_async(sqr, (7, TIMEOUT1))
    get = TimingWrapper(res.get)
    eq(get(), 49)
    # test_async_timeout
    res = pool.apply_async(sqr, (6, TIMEOUT2 + 1.0))
    get = TimingWrapper(res.get)
    raises(multiprocessing.TimeoutError, get, timeout=TIMEOUT2)
    almost(get.elapsed, TIMEOUT2)
    eq(res.get(), 36)
    # test_imap
    it = pool.imap(sqr, list(range(10)))
    eq(list(it), list(map(sqr, list(range(10)))))
    it = pool.imap(sqr, list(range(10)))
    for i in range(10):
        eq(next(it), i * i)
    raises(StopIteration, it.__next__)
    it = pool.imap(sqr, list(range(1000)), chunksize=100)
    for i in range(1000):
        eq(next(it), i * i)
    raises(StopIteration, it.__next__)
    # test_imap_unordered
    it = pool.imap_unordered(sqr, list(range(10)))
    eq(sorted(it), list(map(sqr, list(range(10)))))
    it = pool.imap_unordered(sqr, list(range(1000)), chunksize=100)
    eq(sorted(it), list(map(sqr, list(range(1000)))))
    # test_apply_async errors
    r = pool.apply_async(raising)
    raises(KeyError, r.get)
    eq(r.successful(), False)
    r = pool.apply_async(identity, (1,))
    r.wait()
    eq(r.successful(), True)
    pool.close()
    pool.join()


def test_make_pool():
    raises(ValueError, multiprocessing.Pool, -1)
    raises(ValueError, multiprocessing.Pool, 0)
    p = multiprocessing.Pool(3)
    eq(3, len(p._pool))
    p.close()
    p.join()


def test_terminate_pool():
    p = multiprocessing.Pool(4)
    p.map_async(time.sleep, [0.1 for i in range(100)], chunksize=1)
    p.terminate()
    p.join()


def test_context():
    p = multiprocessing.Pool(2)
    with p:
        eq(p.map(sqr, [1, 2]), [1, 4])
    raises(ValueError, p.map_async, sqr, [1])


def test_pool_not_running():
    p = multiprocessing.Pool(1)
    p.close()
    e = raises(ValueError, p.apply, sqr, (1,))
    eq(str(e), "Pool not running")
    p.join()
    p = multiprocessing.Pool(1)
    e = raises(ValueError, p.join)
    eq(str(e), "Pool is still running")
    p.terminate()


def test_maxtasksperchild():
    p = multiprocessing.Pool(2, maxtasksperchild=2)
    eq(p.map(sqr, list(range(12)), chunksize=1), [x * x for x in range(12)])
    p.close()
    p.join()


def _init(q):
    q.put("initialized")


def test_initializer():
    q = multiprocessing.Queue()
    p = multiprocessing.Pool(1, _init, (q,))
    eq(q.get(timeout=30), "initialized")
    p.terminate()
    p.join()


GROUPS = {
    "process": [
        test_process, test_args_argument, test_daemon_argument, test_parent_process_attributes,
        test_parent_process, test_terminate, test_kill, test_cpu_count, test_active_children,
        test_recursion, test_sentinel, test_close, test_many_processes, test_lose_target_ref,
        test_start_twice_and_errors, test_names, test_daemon_children, test_subclassing,
        test_sys_exit,
    ],
    "queue": [
        test_put, test_get, test_fork, test_qsize, test_task_done, test_timeout,
        test_closed_queue_put_get_exceptions, test_queue_in_queue,
    ],
    "sync": [
        test_lock, test_rlock, test_lock_context, test_lock_between_processes, test_semaphore,
        test_bounded_semaphore, test_semaphore_timeout, test_event, test_connection,
        test_duplex_false, test_wait,
    ],
    "pool": [
        test_pool, test_make_pool, test_terminate_pool, test_context, test_pool_not_running,
        test_maxtasksperchild, test_initializer,
    ],
}


# --- errors: what a child's uncaught exception or sys.exit prints, and main's own ----------

def boom(n):
    raise ValueError(f"bad {n}")


def test_child_errors():
    p = multiprocessing.Process(target=boom, args=(1,), name="Boom")
    p.start()
    p.join()
    eq(p.exitcode, 1)
    p = multiprocessing.Process(target=sys.exit, args=("ignore this",))
    p.start()
    p.join()
    eq(p.exitcode, 1)
    p = multiprocessing.Process(target=sys.exit, args=(300,))
    p.start()
    p.join()
    eq(p.exitcode, 300 % 256)
    p = multiprocessing.Process(target=lambda: None)
    e = raises(Exception, p.start)
    check("lambda" in str(e), str(e))


def _late(what):
    time.sleep(0.2)
    print(what)


def main_raises():
    p = multiprocessing.Process(target=_late, args=("the child ends first",))
    p.start()
    print("main raises")
    boom(2)


def main_exits():
    p = multiprocessing.Process(target=_late, args=("a daemon is terminated",), daemon=True)
    p.start()
    p = multiprocessing.Process(target=_late, args=("a child is joined",))
    p.start()
    print("main exits")
    sys.exit(7)


GROUPS["errors"] = [test_child_errors]


# --- _TestSimpleQueue, JoinableQueue ------------------------------------------------------

import array  # noqa: E402
import threading  # noqa: E402


def _test_simplequeue_empty(queue, child_can_start, parent_can_continue):
    child_can_start.wait()
    try:
        queue.put(queue.empty())
        queue.put(queue.empty())
    finally:
        parent_can_continue.set()


def test_simplequeue_empty():
    queue = multiprocessing.SimpleQueue()
    child_can_start = multiprocessing.Event()
    parent_can_continue = multiprocessing.Event()
    proc = multiprocessing.Process(
        target=_test_simplequeue_empty, args=(queue, child_can_start, parent_can_continue)
    )
    proc.daemon = True
    proc.start()
    check(queue.empty())
    child_can_start.set()
    parent_can_continue.wait()
    check(not queue.empty())
    eq(queue.get(), True)
    eq(queue.get(), False)
    check(queue.empty())
    proc.join()


def test_simplequeue_empty_exceptions():
    q = multiprocessing.SimpleQueue()
    q.close()
    e = raises(OSError, q.empty)
    check("is closed" in str(e), str(e))


def test_simplequeue_close():
    queue = multiprocessing.SimpleQueue()
    queue.close()
    queue.close()


def _join_then_report(q, done):
    q.join()
    done.put("joined")


def test_joinable_queue():
    # wasmproc's: the host counts unfinished tasks; join() in another process returns
    # once they are all done; one task_done() too many is CPython's ValueError.
    q = multiprocessing.JoinableQueue()
    e = raises(ValueError, q.task_done)
    eq(str(e), "task_done() called too many times")
    q.join()
    done = multiprocessing.Queue()
    q.put(1)
    q.put(2)
    p = multiprocessing.Process(target=_join_then_report, args=(q, done))
    p.start()
    q.get()
    q.task_done()
    raises(pyqueue.Empty, done.get, True, 0.2)
    q.get()
    q.task_done()
    eq(done.get(timeout=30), "joined")
    p.join()
    raises(ValueError, q.task_done)


# --- _TestCondition -----------------------------------------------------------------------

SHORT_TIMEOUT = 30.0


def _cond_f(cond, sleeping, woken, timeout=None):
    cond.acquire()
    sleeping.release()
    cond.wait(timeout)
    woken.release()
    cond.release()


def reaches(func, value):
    deadline = time.monotonic() + SHORT_TIMEOUT
    while func() != value and time.monotonic() < deadline:
        time.sleep(0.01)
    eq(func(), value)


def _start(target, args):
    p = multiprocessing.Process(target=target, args=args)
    p.daemon = True
    p.start()
    return p


def test_notify():
    # CPython's waiters are a process and a thread; here, two processes.
    cond = multiprocessing.Condition()
    sleeping = multiprocessing.Semaphore(0)
    woken = multiprocessing.Semaphore(0)
    workers = [_start(_cond_f, (cond, sleeping, woken)) for _ in range(2)]
    sleeping.acquire()
    sleeping.acquire()
    reaches(woken.get_value, 0)
    cond.acquire()
    cond.notify()
    cond.release()
    reaches(woken.get_value, 1)
    cond.acquire()
    cond.notify()
    cond.release()
    reaches(woken.get_value, 2)
    for p in workers:
        p.join()


def test_notify_all():
    cond = multiprocessing.Condition()
    sleeping = multiprocessing.Semaphore(0)
    woken = multiprocessing.Semaphore(0)
    workers = [_start(_cond_f, (cond, sleeping, woken, TIMEOUT1)) for _ in range(6)]
    for i in range(6):
        sleeping.acquire()
    for i in range(6):
        woken.acquire()
    eq(woken.get_value(), 0)
    workers += [_start(_cond_f, (cond, sleeping, woken)) for _ in range(6)]
    for i in range(6):
        sleeping.acquire()
    time.sleep(DELTA)
    eq(woken.get_value(), 0)
    cond.acquire()
    cond.notify_all()
    cond.release()
    for i in range(6):
        woken.acquire()
    eq(woken.get_value(), 0)
    for p in workers:
        p.join()


def test_notify_n():
    cond = multiprocessing.Condition()
    sleeping = multiprocessing.Semaphore(0)
    woken = multiprocessing.Semaphore(0)
    workers = [_start(_cond_f, (cond, sleeping, woken)) for _ in range(6)]
    for i in range(6):
        sleeping.acquire()
    time.sleep(DELTA)
    eq(woken.get_value(), 0)
    cond.acquire()
    cond.notify(n=2)
    cond.release()
    reaches(woken.get_value, 2)
    cond.acquire()
    cond.notify(n=4)
    cond.release()
    reaches(woken.get_value, 6)
    cond.acquire()
    cond.notify(n=3)
    cond.release()
    eq(woken.get_value(), 6)
    for p in workers:
        p.join()


def test_condition_timeout():
    cond = multiprocessing.Condition()
    wait = TimingWrapper(cond.wait)
    cond.acquire()
    res = wait(TIMEOUT1)
    cond.release()
    eq(res, False)
    almost(wait.elapsed, TIMEOUT1)


def _test_waitfor_f(cond, state):
    with cond:
        state.value = 0
        cond.notify()
        result = cond.wait_for(lambda: state.value == 4)
        if not result or state.value != 4:
            sys.exit(1)


def test_waitfor():
    cond = multiprocessing.Condition()
    state = multiprocessing.Value("i", -1)
    p = _start(_test_waitfor_f, (cond, state))
    with cond:
        result = cond.wait_for(lambda: state.value == 0)
        check(result)
        eq(state.value, 0)
    for i in range(4):
        time.sleep(0.01)
        with cond:
            state.value += 1
            cond.notify()
    p.join()
    eq(p.exitcode, 0)


def _test_waitfor_timeout_f(cond, state, success, sem):
    sem.release()
    with cond:
        expected = 0.100
        dt = time.monotonic()
        result = cond.wait_for(lambda: state.value == 4, timeout=expected)
        dt = time.monotonic() - dt
        if not result and (expected - 0.005) <= dt:
            success.value = True


def test_waitfor_timeout():
    cond = multiprocessing.Condition()
    state = multiprocessing.Value("i", 0)
    success = multiprocessing.Value("i", False)
    sem = multiprocessing.Semaphore(0)
    p = _start(_test_waitfor_timeout_f, (cond, state, success, sem))
    check(sem.acquire(timeout=300))
    for i in range(3):
        time.sleep(0.010)
        with cond:
            state.value += 1
            cond.notify()
    p.join()
    check(success.value)


def _test_wait_result(c):
    with c:
        c.notify()


def test_wait_result():
    # Without CPython's SIGINT part: a guest has no signals to send.
    c = multiprocessing.Condition()
    with c:
        check(not c.wait(0))
        check(not c.wait(0.1))
        p = multiprocessing.Process(target=_test_wait_result, args=(c,))
        p.start()
        check(c.wait(60))
        p.join()


def test_condition_errors():
    # wasmproc's: CPython's AssertionError without the lock; a Condition over a Lock.
    c = multiprocessing.Condition(multiprocessing.Lock())
    e = raises(AssertionError, c.wait, 0)
    eq(str(e), "must acquire() condition before using wait()")
    e = raises(AssertionError, c.notify)
    eq(str(e), "lock is not owned")
    raises(AssertionError, c.notify_all)
    with c:
        eq(c.wait(0.01), False)
        c.notify_all()
    check(c.acquire(False))
    check(not c.acquire(False))
    c.release()


# --- _TestBarrier -------------------------------------------------------------------------

BN = 5
DEFAULT_TIMEOUT = 30.0


class DummyList:
    """CPython's _DummyList: a shared counter; append adds one, len reads it."""

    def __init__(self):
        self._n = multiprocessing.Value("i", 0)

    def append(self, _):
        with self._n.get_lock():
            self._n.value += 1

    def __len__(self):
        return self._n.value


def _bunch_task(f, args, started, finished, can_exit):
    started.append(True)
    try:
        f(*args)
    finally:
        finished.append(True)
        can_exit.wait(30)
        assert can_exit.is_set()


def run_parties(f, args):
    """CPython's Bunch: BN - 1 processes run f(*args) while this one does too."""
    started, finished = DummyList(), DummyList()
    can_exit = multiprocessing.Event()
    can_exit.set()
    procs = [_start(_bunch_task, (f, args, started, finished, can_exit)) for _ in range(BN - 1)]
    try:
        f(*args)
        while len(finished) < BN - 1:
            time.sleep(0.01)
    finally:
        for p in procs:
            p.join()
    for p in procs:
        eq(p.exitcode, 0)


class AppendTrue:
    def __init__(self, obj):
        self.obj = obj

    def __call__(self):
        self.obj.append(True)


def _multipass(barrier, results, n):
    m = barrier.parties
    assert m == BN
    for i in range(n):
        results[0].append(True)
        assert len(results[1]) == i * m
        barrier.wait()
        results[1].append(True)
        assert len(results[0]) == (i + 1) * m
        barrier.wait()
    assert barrier.n_waiting == 0
    assert not barrier.broken


def _barrier():
    return multiprocessing.Barrier(BN, timeout=DEFAULT_TIMEOUT)


def test_barrier(passes=1):
    barrier = _barrier()
    results = [DummyList(), DummyList()]
    run_parties(_multipass, (barrier, results, passes))
    barrier.abort()


def test_barrier_10():
    test_barrier(10)


def _test_wait_return_f(barrier, queue):
    res = barrier.wait()
    queue.put(res)


def test_wait_return():
    barrier = _barrier()
    queue = multiprocessing.Queue()
    run_parties(_test_wait_return_f, (barrier, queue))
    results = [queue.get() for i in range(BN)]
    eq(results.count(0), 1)
    eq(sorted(results), list(range(BN)))
    barrier.abort()


def _test_action_f(barrier, results):
    barrier.wait()
    if len(results) != 1:
        raise RuntimeError


def test_action():
    results = DummyList()
    barrier = multiprocessing.Barrier(BN, action=AppendTrue(results))
    run_parties(_test_action_f, (barrier, results))
    eq(len(results), 1)


def _test_abort_f(barrier, results1, results2):
    try:
        i = barrier.wait()
        if i == BN // 2:
            raise RuntimeError
        barrier.wait()
        results1.append(True)
    except threading.BrokenBarrierError:
        results2.append(True)
    except RuntimeError:
        barrier.abort()


def test_abort():
    barrier = _barrier()
    results1, results2 = DummyList(), DummyList()
    run_parties(_test_abort_f, (barrier, results1, results2))
    eq(len(results1), 0)
    eq(len(results2), BN - 1)
    check(barrier.broken)


def _test_reset_f(barrier, results1, results2, results3):
    i = barrier.wait()
    if i == BN // 2:
        while barrier.n_waiting < BN - 1:
            time.sleep(0.001)
        barrier.reset()
    else:
        try:
            barrier.wait()
            results1.append(True)
        except threading.BrokenBarrierError:
            results2.append(True)
    barrier.wait()
    results3.append(True)


def test_reset():
    barrier = _barrier()
    results1, results2, results3 = DummyList(), DummyList(), DummyList()
    run_parties(_test_reset_f, (barrier, results1, results2, results3))
    eq(len(results1), 0)
    eq(len(results2), BN - 1)
    eq(len(results3), BN)
    barrier.abort()


def _test_abort_and_reset_f(barrier, barrier2, results1, results2, results3):
    try:
        i = barrier.wait()
        if i == BN // 2:
            raise RuntimeError
        barrier.wait()
        results1.append(True)
    except threading.BrokenBarrierError:
        results2.append(True)
    except RuntimeError:
        barrier.abort()
    if barrier2.wait() == BN // 2:
        barrier.reset()
    barrier2.wait()
    barrier.wait()
    results3.append(True)


def test_abort_and_reset():
    barrier = _barrier()
    results1, results2, results3 = DummyList(), DummyList(), DummyList()
    barrier2 = multiprocessing.Barrier(BN)
    run_parties(_test_abort_and_reset_f, (barrier, barrier2, results1, results2, results3))
    eq(len(results1), 0)
    eq(len(results2), BN - 1)
    eq(len(results3), BN)
    barrier.abort()


def _test_barrier_timeout_f(barrier, results):
    i = barrier.wait()
    if i == BN // 2:
        time.sleep(1.0)
    try:
        barrier.wait(0.5)
    except threading.BrokenBarrierError:
        results.append(True)


def test_barrier_timeout():
    barrier = _barrier()
    results = DummyList()
    run_parties(_test_barrier_timeout_f, (barrier, results))
    eq(len(results), barrier.parties)
    barrier.abort()


def _test_default_timeout_f(barrier, results):
    i = barrier.wait(DEFAULT_TIMEOUT)
    if i == BN // 2:
        time.sleep(1.0)
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        results.append(True)


def test_default_timeout():
    barrier = multiprocessing.Barrier(BN, timeout=0.5)
    results = DummyList()
    run_parties(_test_default_timeout_f, (barrier, results))
    eq(len(results), barrier.parties)


def test_single_thread():
    b = multiprocessing.Barrier(1)
    b.wait()
    b.wait()


def _test_thousand_f(barrier, passes, conn, lock):
    for i in range(passes):
        barrier.wait()
        with lock:
            conn.send(i)


def test_thousand():
    barrier = _barrier()
    passes = 1000
    lock = multiprocessing.Lock()
    conn, child_conn = multiprocessing.Pipe(False)
    procs = []
    for j in range(BN):
        p = multiprocessing.Process(target=_test_thousand_f, args=(barrier, passes, child_conn, lock))
        p.start()
        procs.append(p)
    for i in range(passes):
        for j in range(BN):
            eq(conn.recv(), i)
    for p in procs:
        p.join()
    barrier.abort()


def _failing_action():
    raise KeyError("the action failed")


def _wait_broken(barrier, q):
    try:
        barrier.wait()
        q.put("passed")
    except threading.BrokenBarrierError:
        q.put("broken")


def test_barrier_action_fails():
    # wasmproc's: an action found by qualified name that raises breaks the barrier; the
    # party that ran it gets its exception, the others BrokenBarrierError.
    raises(ValueError, multiprocessing.Barrier, 0)
    barrier = multiprocessing.Barrier(2, action=_failing_action)
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=_wait_broken, args=(barrier, q))
    p.start()
    while barrier.n_waiting < 1:
        time.sleep(0.001)
    e = raises(KeyError, barrier.wait)
    eq(str(e), "'the action failed'")
    eq(q.get(timeout=30), "broken")
    p.join()
    check(barrier.broken)
    raises(threading.BrokenBarrierError, barrier.wait)
    barrier.reset()
    check(not barrier.broken)


# --- _TestValue, _TestArray ---------------------------------------------------------------

codes_values = [
    ("i", 4343, 24234),
    ("d", 3.625, -4.25),
    ("h", -232, 234),
    ("q", 2**33, 2**34),
    ("c", b"x", b"y"),
]


def _test_values(values):
    for sv, cv in zip(values, codes_values):
        sv.value = cv[2]


def test_value(raw=False):
    if raw:
        values = [multiprocessing.RawValue(code, value) for code, value, _ in codes_values]
    else:
        values = [multiprocessing.Value(code, value) for code, value, _ in codes_values]
    for sv, cv in zip(values, codes_values):
        eq(sv.value, cv[1])
    proc = multiprocessing.Process(target=_test_values, args=(values,))
    proc.daemon = True
    proc.start()
    proc.join()
    for sv, cv in zip(values, codes_values):
        eq(sv.value, cv[2])


def test_rawvalue():
    test_value(raw=True)


def test_getobj_getlock():
    val1 = multiprocessing.Value("i", 5)
    val1.get_lock()
    val1.get_obj()
    val2 = multiprocessing.Value("i", 5, lock=None)
    val2.get_lock()
    val2.get_obj()
    lock = multiprocessing.Lock()
    val3 = multiprocessing.Value("i", 5, lock=lock)
    lock3 = val3.get_lock()
    val3.get_obj()
    eq(lock, lock3)
    arr4 = multiprocessing.Value("i", 5, lock=False)
    check(not hasattr(arr4, "get_lock"))
    check(not hasattr(arr4, "get_obj"))
    raises(AttributeError, multiprocessing.Value, "i", 5, lock="navalue")
    arr5 = multiprocessing.RawValue("i", 5)
    check(not hasattr(arr5, "get_lock"))
    check(not hasattr(arr5, "get_obj"))


def _array_f(seq):
    for i in range(1, len(seq)):
        seq[i] += seq[i - 1]


def test_array(raw=False):
    seq = [680, 626, 934, 821, 150, 233, 548, 982, 714, 831]
    if raw:
        arr = multiprocessing.RawArray("i", seq)
    else:
        arr = multiprocessing.Array("i", seq)
    eq(len(arr), len(seq))
    eq(arr[3], seq[3])
    eq(list(arr[2:7]), list(seq[2:7]))
    arr[4:8] = seq[4:8] = array.array("i", [1, 2, 3, 4])
    eq(list(arr[:]), seq)
    _array_f(seq)
    p = multiprocessing.Process(target=_array_f, args=(arr,))
    p.daemon = True
    p.start()
    p.join()
    eq(list(arr[:]), seq)


def test_array_from_size():
    size = 10
    for _ in range(3):
        arr = multiprocessing.Array("i", size)
        eq(len(arr), size)
        eq(list(arr), [0] * size)
        arr[:] = range(10)
        eq(list(arr), list(range(10)))
        del arr


def test_rawarray():
    test_array(raw=True)


def test_getobj_getlock_obj():
    arr1 = multiprocessing.Array("i", list(range(10)))
    arr1.get_lock()
    arr1.get_obj()
    arr2 = multiprocessing.Array("i", list(range(10)), lock=None)
    arr2.get_lock()
    arr2.get_obj()
    lock = multiprocessing.Lock()
    arr3 = multiprocessing.Array("i", list(range(10)), lock=lock)
    lock3 = arr3.get_lock()
    arr3.get_obj()
    eq(lock, lock3)
    arr4 = multiprocessing.Array("i", range(10), lock=False)
    check(not hasattr(arr4, "get_lock"))
    check(not hasattr(arr4, "get_obj"))
    raises(AttributeError, multiprocessing.Array, "i", range(10), lock="notalock")
    arr5 = multiprocessing.RawArray("i", range(10))
    check(not hasattr(arr5, "get_lock"))
    check(not hasattr(arr5, "get_obj"))


def _add_many(counter, n):
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1


def test_value_typecodes():
    # wasmproc's: every typecode, ctypes' wrap-around, negative indices, a lock held
    # around read-modify-writes by several processes, and the refusal outside start args.
    for code, value in [("b", -5), ("B", 250), ("h", -300), ("H", 65000), ("i", -7),
                        ("I", 2**32 - 1), ("l", -9), ("L", 9), ("q", -(2**40)), ("Q", 2**63),
                        ("f", 0.5), ("d", 1e300), ("c", b"z")]:
        eq(multiprocessing.RawValue(code, value).value, value)
        eq(multiprocessing.RawValue(code).value, b"\0" if code == "c" else 0)
    eq(multiprocessing.RawValue("b", 200).value, -56)
    eq(multiprocessing.RawValue("i", 2**33 + 3).value, 3)
    raises(TypeError, multiprocessing.RawValue, "i", "x")
    a = multiprocessing.Array("d", [1.5, 2.5, 3.5])
    eq(a[-1], 3.5)
    raises(IndexError, a.__getitem__, 3)
    eq(a[::2], [1.5, 3.5])
    s = multiprocessing.Array("c", b"hello")
    eq((s.value, s[1], s[1:3]), (b"hello", b"e", b"el"))
    counter = multiprocessing.Value("i", 0)
    ps = [multiprocessing.Process(target=_add_many, args=(counter, 50)) for _ in range(4)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    eq(counter.value, 200)
    q = multiprocessing.Queue()
    e = raises(RuntimeError, q.put, counter)
    eq(str(e), "Synchronized objects should only be shared between processes through inheritance")


# --- _TestContainers (Manager().dict(), .list(), .Namespace()) ----------------------------

def test_list():
    m = multiprocessing.Manager()
    a = m.list(list(range(10)))
    eq(a[:], list(range(10)))
    b = m.list()
    eq(b[:], [])
    b.extend(list(range(5)))
    eq(b[:], list(range(5)))
    eq(b[2], 2)
    eq(b[2:10], [2, 3, 4])
    b *= 2
    eq(b[:], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    eq(b + [5, 6], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6])
    eq(a[:], list(range(10)))


def test_list_iter():
    a = multiprocessing.Manager().list(list(range(10)))
    it = iter(a)
    eq(list(it), list(range(10)))
    eq(list(it), [])
    it = iter(a)
    a[0] = 100
    eq(next(it), 100)


def test_dict():
    d = multiprocessing.Manager().dict()
    indices = list(range(65, 70))
    for i in indices:
        d[i] = chr(i)
    eq(d.copy(), dict((i, chr(i)) for i in indices))
    eq(sorted(d.keys()), indices)
    eq(sorted(d.values()), [chr(i) for i in indices])
    eq(sorted(d.items()), [(i, chr(i)) for i in indices])


def test_dict_iter():
    d = multiprocessing.Manager().dict()
    indices = list(range(65, 70))
    for i in indices:
        d[i] = chr(i)
    it = iter(d)
    eq(list(it), indices)
    eq(list(it), [])
    it = iter(d)
    d.clear()
    raises(RuntimeError, next, it)


def test_namespace():
    n = multiprocessing.Manager().Namespace()
    n.name = "Bob"
    n.job = "Builder"
    n._hidden = "hidden"
    eq((n.name, n.job), ("Bob", "Builder"))
    del n.job
    eq(str(n), "Namespace(name='Bob')")
    check(hasattr(n, "name"))
    check(not hasattr(n, "job"))


def _manager_f(d, l, ns):
    d[1] = "1"
    d["2"] = 2
    d[0.25] = None
    l.reverse()
    ns.x = ns.x + 1


def test_manager_in_child():
    # The example of CPython's documentation, and wasmproc's checks of the proxies' methods
    # and errors.
    with multiprocessing.Manager() as manager:
        d = manager.dict()
        l = manager.list(range(10))
        ns = manager.Namespace(x=1)
        p = multiprocessing.Process(target=_manager_f, args=(d, l, ns))
        p.start()
        p.join()
        eq(str(d), "{1: '1', '2': 2, 0.25: None}")
        eq(str(l), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]")
        eq(ns.x, 2)
    e = raises(KeyError, d.__getitem__, "missing")
    eq(e.args, ("missing",))
    eq((d.get("missing", 5), "2" in d, len(d)), (5, True, 3))
    eq(d.pop("2"), 2)
    eq(d.setdefault("k", []), [])
    eq(d.popitem(), ("k", []))
    d.update({"a": 1}, b=2)
    eq(d.copy(), {1: "1", 0.25: None, "a": 1, "b": 2})
    raises(KeyError, d.__delitem__, "zz")
    eq(l.pop(), 0)
    eq(l.pop(0), 9)
    l.insert(0, "x")
    l.remove(8)
    del l[1]
    eq(l[:], ["x", 6, 5, 4, 3, 2, 1])
    l.sort(key=str)
    eq(l[:], [1, 2, 3, 4, 5, 6, "x"])
    l[1:3] = ["two"]
    eq((l[:], l.index(4), l.count(1), 5 in l), ([1, "two", 4, 5, 6, "x"], 2, 1, True))
    e = raises(IndexError, l.__getitem__, 6)
    eq(str(e), "list index out of range")
    e = raises(IndexError, multiprocessing.Manager().list().pop)
    eq(str(e), "pop from empty list")
    e = raises(RuntimeError, l.append, d)
    eq(str(e), "DictProxy objects should only be shared between processes through inheritance")


def _wait_forever(barrier):
    barrier.wait()


def test_barrier_party_dies():
    # wasmproc's (issue 18): a party that ends while it waits breaks the barrier.
    barrier = multiprocessing.Barrier(2)
    p = multiprocessing.Process(target=_wait_forever, args=(barrier,))
    p.start()
    while barrier.n_waiting < 1:
        time.sleep(0.001)
    p.terminate()
    p.join()
    check(barrier.broken)
    raises(threading.BrokenBarrierError, barrier.wait)


def _hold_and_end(cond):
    cond.acquire()


def test_condition_owner_dies():
    # wasmproc's (issue 18): a process that ends holding a Condition's lock leaves it to
    # the next acquirer (the robust lock rule), and the condition works on.
    cond = multiprocessing.Condition()
    p = multiprocessing.Process(target=_hold_and_end, args=(cond,))
    p.start()
    p.join()
    eq(p.exitcode, 0)
    check(cond.acquire(timeout=30))
    eq(cond.wait(0.01), False)
    cond.notify()
    cond.release()


# --- TestSyncManagerTypes: a manager's objects, used by a child -------------------------

def _run_worker(worker, obj):
    p = multiprocessing.Process(target=worker, args=(obj,))
    p.daemon = True
    p.start()
    p.join()
    eq(p.exitcode, 0)


def _smt_event(obj):
    assert obj.is_set()
    obj.wait()
    obj.clear()
    obj.wait(0.001)


def _smt_acquire(obj):
    obj.acquire()


def _smt_acquire_release(obj):
    obj.acquire()
    obj.release()


def _smt_barrier(obj):
    assert obj.parties == 5
    obj.reset()


def _smt_queue(obj):
    assert obj.qsize() == 2
    assert obj.full()
    assert not obj.empty()
    assert obj.get() == 5
    assert not obj.empty()
    assert obj.get() == 6
    assert obj.empty()


def _smt_list(obj):
    eq(obj[0], 5)
    eq(obj.count(5), 1)
    eq(obj.index(5), 0)
    obj.sort()
    obj.reverse()
    for x in obj:
        pass
    eq(len(obj), 1)
    eq(obj.pop(0), 5)


def _smt_dict(obj):
    eq(len(obj), 1)
    eq(obj["foo"], 5)
    eq(obj.get("foo"), 5)
    eq(list(obj.items()), [("foo", 5)])
    eq(list(obj.keys()), ["foo"])
    eq(list(obj.values()), [5])
    eq(obj.copy(), {"foo": 5})
    eq(obj.popitem(), ("foo", 5))


def _smt_value(obj):
    eq(obj.value, 1)
    eq(obj.get(), 1)
    obj.set(2)


def _smt_array(obj):
    eq(obj[0], 0)
    eq(obj[1], 1)
    eq(len(obj), 2)
    eq(list(obj), [0, 1])


def _smt_namespace(obj):
    eq(obj.x, 0)
    eq(obj.y, 1)


def test_smt_types():
    manager = multiprocessing.Manager()
    o = manager.Event()
    o.set()
    _run_worker(_smt_event, o)
    check(not o.is_set())
    o.wait(0.001)
    _run_worker(_smt_acquire_release, manager.RLock())
    for sname in ("Semaphore", "BoundedSemaphore"):
        o = getattr(manager, sname)()
        _run_worker(_smt_acquire, o)
        o.release()
    _run_worker(_smt_acquire_release, manager.Condition())
    _run_worker(_smt_barrier, manager.Barrier(5))
    for qname in ("Queue", "JoinableQueue"):
        o = getattr(manager, qname)(2)
        o.put(5)
        o.put(6)
        _run_worker(_smt_queue, o)
        check(o.empty())
        check(not o.full())
    o = manager.list()
    o.append(5)
    _run_worker(_smt_list, o)
    eq(len(o), 0)
    o = manager.dict()
    o["foo"] = 5
    _run_worker(_smt_dict, o)
    eq(len(o), 0)
    o = manager.Value("i", 1)
    _run_worker(_smt_value, o)
    eq(o.value, 2)
    eq(o.get(), 2)
    eq(str(o), "Value('i', 2)")
    _run_worker(_smt_array, manager.Array("i", [0, 1]))
    o = manager.Namespace()
    o.x = 0
    o.y = 1
    _run_worker(_smt_namespace, o)
    manager.shutdown()


GROUPS["queues2"] = [
    test_simplequeue_empty, test_simplequeue_empty_exceptions, test_simplequeue_close,
    test_joinable_queue,
]
GROUPS["condition"] = [
    test_notify, test_notify_all, test_notify_n, test_condition_timeout, test_waitfor,
    test_waitfor_timeout, test_wait_result, test_condition_errors, test_condition_owner_dies,
]
GROUPS["barrier"] = [
    test_barrier, test_barrier_10, test_wait_return, test_action, test_abort, test_reset,
    test_abort_and_reset, test_barrier_timeout, test_default_timeout, test_single_thread,
    test_thousand, test_barrier_action_fails, test_barrier_party_dies,
]
GROUPS["sharedctypes"] = [
    test_value, test_rawvalue, test_getobj_getlock, test_array, test_array_from_size,
    test_rawarray, test_getobj_getlock_obj, test_value_typecodes,
]
GROUPS["managers"] = [
    test_list, test_list_iter, test_dict, test_dict_iter, test_namespace, test_manager_in_child,
    test_smt_types,
]


def main(groups):
    if groups == ["main-raises"]:
        main_raises()
    if groups == ["main-exits"]:
        main_exits()
    failed = 0
    for group in groups:
        for test in GROUPS[group]:
            try:
                test()
                print(f"{test.__name__} ok")
            except Exception as e:
                failed += 1
                print(f"{test.__name__} FAIL: {type(e).__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(GROUPS)))
