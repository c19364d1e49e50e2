#!/usr/bin/env python3
"""CPython baseline for wasmproc's spawn benchmark (tests/benches/process.rs).

Measures the start+join time of a no-op multiprocessing.Process with each start method
(fork, spawn, forkserver) and prints machine-readable lines:

    python_version 3.x.y
    fork_iterations 200
    fork_median_us 1234.5
    fork_p10_us ...
    fork_p90_us ...
    fork_skipped <reason>        (when a start method is not available)

Usage: bench_cpython.py [FORK_N] [SPAWN_N] [FORKSERVER_N]   (defaults 200, 50, 200)
"""

import multiprocessing as mp
import platform
import sys
import time


def noop():
    pass


def quantile(sorted_samples, q):
    i = round((len(sorted_samples) - 1) * q)
    return sorted_samples[i]


def measure(method, n, warmup):
    ctx = mp.get_context(method)
    samples = []
    for i in range(warmup + n):
        t = time.perf_counter()
        p = ctx.Process(target=noop)
        p.start()
        p.join()
        us = (time.perf_counter() - t) * 1e6
        if p.exitcode != 0:
            raise RuntimeError(f"{method}: no-op child ended with exit code {p.exitcode}")
        p.close()
        if i >= warmup:
            samples.append(us)
    samples.sort()
    return samples


def main():
    counts = [200, 50, 200]
    for i, arg in enumerate(sys.argv[1:4]):
        counts[i] = int(arg)
    print(f"python_version {platform.python_version()}", flush=True)
    available = mp.get_all_start_methods()
    for method, n in zip(["fork", "spawn", "forkserver"], counts):
        if method not in available:
            print(f"{method}_skipped start method not available on this platform", flush=True)
            continue
        warmup = max(5, n // 10)
        try:
            s = measure(method, n, warmup)
        except Exception as e:  # report and go on with the other methods
            print(f"{method}_skipped {type(e).__name__}: {e}".replace("\n", " "), flush=True)
            continue
        print(f"{method}_iterations {n}")
        print(f"{method}_median_us {quantile(s, 0.5):.1f}")
        print(f"{method}_p10_us {quantile(s, 0.1):.1f}")
        print(f"{method}_p90_us {quantile(s, 0.9):.1f}", flush=True)


if __name__ == "__main__":
    main()
