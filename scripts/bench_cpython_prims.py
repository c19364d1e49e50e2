"""CPython's figures for the primitives benchmark (tests/benches/prims.rs).

Usage: python3 scripts/bench_cpython_prims.py OP N
Times N operations of one multiprocessing primitive, as tests/programs/src/bin/bench_prims.rs
does for wasmproc, and prints `op_s <seconds>` and `ops <N>` (or `error <message>`).
"""

import multiprocessing as mp
import sys
import time


def turns(cond, turn, n):
    for i in range(n):
        with cond:
            cond.wait_for(lambda: turn.value == 2 * i + 1)
            turn.value = 2 * i + 2
            cond.notify()


def rounds(b, n):
    for _ in range(n):
        b.wait()


def pongs(ping, pong, n):
    for _ in range(n):
        assert ping.wait()
        ping.clear()
        pong.set()


def main():
    op, n = sys.argv[1], int(sys.argv[2])
    start = time.perf_counter()
    if op == "lock":
        lock = mp.Lock()
        for _ in range(n):
            lock.acquire()
            lock.release()
    elif op == "value":
        v = mp.Value("q", 0)
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        assert v.value == n
    elif op == "simplequeue":
        q = mp.SimpleQueue()
        for i in range(n):
            q.put(i)
            assert q.get() == i
    elif op == "joinable":
        q = mp.JoinableQueue()
        for i in range(n):
            q.put(i)
            assert q.get() == i
            q.task_done()
        q.join()
    elif op == "dict":
        with mp.Manager() as manager:
            d = manager.dict()
            d[7] = 0
            start = time.perf_counter()
            for _ in range(n):
                d[7] = d[7] + 1
            assert d[7] == n
            print(f"op_s {time.perf_counter() - start:.6f}")
            print(f"ops {n}", flush=True)
        return
    elif op == "condition":
        cond = mp.Condition()
        turn = mp.RawValue("Q", 0)
        p = mp.Process(target=turns, args=(cond, turn, n))
        p.start()
        for i in range(n):
            with cond:
                cond.wait_for(lambda: turn.value == 2 * i)
                turn.value = 2 * i + 1
                cond.notify()
        p.join()
        assert turn.value == 2 * n
    elif op == "barrier":
        b = mp.Barrier(2)
        p = mp.Process(target=rounds, args=(b, n))
        p.start()
        for _ in range(n):
            b.wait()
        p.join()
    elif op == "event":
        ping, pong = mp.Event(), mp.Event()
        p = mp.Process(target=pongs, args=(ping, pong, n))
        p.start()
        for _ in range(n):
            ping.set()
            assert pong.wait()
            pong.clear()
        p.join()
        print(f"op_s {time.perf_counter() - start:.6f}")
        print(f"ops {2 * n}", flush=True)
        return
    else:
        print(f"error unknown op {op}")
        return
    print(f"op_s {time.perf_counter() - start:.6f}")
    print(f"ops {n}", flush=True)


if __name__ == "__main__":
    main()
