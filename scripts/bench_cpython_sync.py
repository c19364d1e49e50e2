#!/usr/bin/env python3
"""CPython baseline for wasmproc's queue and pool benchmarks (tests/benches/sync.rs).

Measures, with the platform's default start method:

  queue N       a child puts N small ints (0..N) into a multiprocessing.Queue, the parent
                gets them (checking the order); throughput from the parent's first get to
                its last (N-1 items), and with the child's start and join included.
  pool N W      multiprocessing.Pool(W).map(f, range(N), chunksize=1) of a trivial f
                (x -> 2x + 1), checking the results; the map alone on a pool that has
                run one warm-up map, and pool creation + map + close + join.

and prints machine-readable `key value` lines:

    python_version 3.x.y
    start_method fork
    queue_items N
    queue_steady_s 1.23          (first get to last get, N-1 items)
    queue_total_s 1.30           (Process start to join, N items)
    pool_items N
    pool_workers W
    pool_map_s 0.98              (the timed map alone)
    pool_total_s 1.20            (Pool(W) + warm-up map + map + close + join)
    <what>_error <message>       (when a measurement failed)

Usage: bench_cpython_sync.py queue N | pool N W   (several may follow one another:
       bench_cpython_sync.py queue 200000 pool 20000 2)
"""

import multiprocessing as mp
import platform
import sys
import time


def producer(q, n):
    put = q.put
    for i in range(n):
        put(i)


def f(x):
    return 2 * x + 1


def queue_bench(n):
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, n))
    t0 = time.perf_counter()
    p.start()
    get = q.get
    first = get()
    t1 = time.perf_counter()
    if first != 0:
        raise RuntimeError(f"first item {first}, expected 0")
    for i in range(1, n):
        x = get()
        if x != i:
            raise RuntimeError(f"item {x}, expected {i}")
    t2 = time.perf_counter()
    p.join()
    t3 = time.perf_counter()
    if p.exitcode != 0:
        raise RuntimeError(f"producer ended with exit code {p.exitcode}")
    print(f"queue_items {n}")
    print(f"queue_steady_s {t2 - t1:.6f}")
    print(f"queue_total_s {t3 - t0:.6f}", flush=True)


def pool_bench(n, workers):
    t0 = time.perf_counter()
    pool = mp.Pool(workers)
    # Warm-up: every worker is up and has run a task.
    pool.map(f, range(4 * workers), chunksize=1)
    t1 = time.perf_counter()
    out = pool.map(f, range(n), chunksize=1)
    t2 = time.perf_counter()
    pool.close()
    pool.join()
    t3 = time.perf_counter()
    if out != [2 * x + 1 for x in range(n)]:
        raise RuntimeError("wrong results from Pool.map")
    print(f"pool_items {n}")
    print(f"pool_workers {workers}")
    print(f"pool_map_s {t2 - t1:.6f}")
    print(f"pool_total_s {t3 - t0:.6f}", flush=True)


def main():
    print(f"python_version {platform.python_version()}")
    print(f"start_method {mp.get_start_method()}", flush=True)
    args = sys.argv[1:]
    while args:
        what = args.pop(0)
        try:
            if what == "queue":
                queue_bench(int(args.pop(0)))
            elif what == "pool":
                n = int(args.pop(0))
                workers = int(args.pop(0))
                pool_bench(n, workers)
            else:
                raise SystemExit(f"unknown measurement {what!r}; usage: {__doc__}")
        except SystemExit:
            raise
        except Exception as e:  # report and go on with the others
            print(f"{what}_error {type(e).__name__}: {e}".replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
