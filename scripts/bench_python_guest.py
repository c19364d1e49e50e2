"""The Python guest benchmark's program (scripts/bench-python-guest.sh builds and runs it).

`start N`: start+join of a no-op child N times (after N/10 warm-up ones), timed inside the
guest; prints `start_median_us`, `start_p10_us`, `start_p90_us`.
`hold N`: starts N children that wait on one Event, prints `held N` and sleeps 3 s (the
script reads the host's memory meanwhile), then sets the event and joins them.
"""

import multiprocessing as mp
import sys
import time


def noop():
    pass


def quantile(s, q):
    return s[round((len(s) - 1) * q)]


def start(n):
    samples = []
    for i in range(max(5, n // 10) + n):
        t = time.perf_counter()
        p = mp.Process(target=noop)
        p.start()
        p.join()
        us = (time.perf_counter() - t) * 1e6
        if p.exitcode != 0:
            raise RuntimeError(f"no-op child ended with exit code {p.exitcode}")
        p.close()
        samples.append(us)
    samples = sorted(samples[max(5, n // 10):])
    print(f"start_iterations {n}")
    print(f"start_median_us {quantile(samples, 0.5):.1f}")
    print(f"start_p10_us {quantile(samples, 0.1):.1f}")
    print(f"start_p90_us {quantile(samples, 0.9):.1f}", flush=True)


def hold(n):
    e = mp.Event()
    t = time.perf_counter()
    procs = []
    for _ in range(n):
        p = mp.Process(target=e.wait)
        p.start()
        procs.append(p)
    started = time.perf_counter() - t
    alive = sum(p.is_alive() for p in procs)
    print(f"held {alive}")
    print(f"hold_start_us_per_process {started / n * 1e6:.1f}", flush=True)
    time.sleep(3)
    e.set()
    for p in procs:
        p.join()


if __name__ == "__main__":
    what, n = sys.argv[1], int(sys.argv[2])
    start(n) if what == "start" else hold(n)
