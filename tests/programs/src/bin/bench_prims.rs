//! The primitives benchmark's guest: `bench_prims OP N` times N operations of one sync
//! primitive and prints `op_s <seconds>` and `ops <N>` (tests/benches/prims.rs). The
//! operations of one process run in a child, so that under `native` they cross to the run's
//! root host as a child's do (the main process of a native run holds the objects itself).
//!
//! - `lock`: an uncontended `Lock` acquire and release;
//! - `value`: `with v.get_lock(): v.value += 1` on a `Value<i64>`;
//! - `simplequeue`: a `SimpleQueue` put then get, in one process;
//! - `joinable`: a `JoinableQueue` put, get and `task_done`, in one process, then `join`;
//! - `condition`: one hand-over between two processes taking turns under a `Condition`;
//! - `barrier`: one round of a two-party `Barrier` (this process and a child);
//! - `event`: one hand-over between two processes through two `Event`s (one sets, the
//!   other wakes from `wait` and clears it); `ops` counts hand-overs;
//! - `dict`: `d[k] = d[k] + 1` on a `Manager().dict()` (a get and a set), in one process.

use std::time::Instant;
use wasmproc_guest::{
    Barrier, Condition, Event, JoinableQueue, Lock, Manager, Process, Queue, RawValue, SimpleQueue,
    Value, targets,
};

/// The child of `condition`: takes the odd turns.
fn turns((cond, turn, n): (Condition, RawValue<u64>, u64)) {
    for i in 0..n {
        let _held = cond.lock().unwrap();
        cond.wait_for(|| turn.get().unwrap() == 2 * i + 1, None)
            .unwrap();
        turn.set(2 * i + 2).unwrap();
        cond.notify(1).unwrap();
    }
}

/// The child of `barrier`: waits `n` rounds.
fn rounds((b, n): (Barrier, u64)) {
    for _ in 0..n {
        b.wait(None).unwrap();
    }
}

/// The child of `event`: answers each of `n` sets of `ping` by setting `pong`.
fn pongs((ping, pong, n): (Event, Event, u64)) {
    for _ in 0..n {
        assert!(ping.wait(None).unwrap());
        ping.clear().unwrap();
        pong.set().unwrap();
    }
}

/// Times `n` operations of `op` done by one process; sends the seconds.
fn single((op, n, out): (String, u64, Queue<f64>)) {
    let start = Instant::now();
    match op.as_str() {
        "lock" => {
            let l = Lock::new().unwrap();
            for _ in 0..n {
                l.acquire().unwrap();
                l.release().unwrap();
            }
        }
        "value" => {
            let v = Value::new(0i64).unwrap();
            for _ in 0..n {
                let _held = v.get_lock().lock().unwrap();
                v.set(v.get().unwrap() + 1).unwrap();
            }
            assert_eq!(v.get().unwrap(), n as i64);
        }
        "simplequeue" => {
            let q = SimpleQueue::<u64>::new().unwrap();
            for i in 0..n {
                q.put(&i).unwrap();
                assert_eq!(q.get().unwrap(), i);
            }
        }
        "joinable" => {
            let q = JoinableQueue::<u64>::new().unwrap();
            for i in 0..n {
                q.put(&i).unwrap();
                assert_eq!(q.get().unwrap(), i);
                q.task_done().unwrap();
            }
            q.join().unwrap();
        }
        "dict" => {
            let d = Manager::new().dict::<u32, u64>().unwrap();
            d.set(&7, &0).unwrap();
            for _ in 0..n {
                let v = d.get(&7).unwrap().unwrap();
                d.set(&7, &(v + 1)).unwrap();
            }
            assert_eq!(d.get(&7).unwrap(), Some(n));
        }
        other => panic!("unknown op {other}"),
    }
    out.put(&start.elapsed().as_secs_f64()).unwrap();
}

targets![turns, rounds, pongs, single];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args.get(1).map(String::as_str).unwrap_or("lock");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let start = Instant::now();
    let mut secs = None;
    match op {
        "lock" | "value" | "simplequeue" | "joinable" | "dict" => {
            let out = Queue::<f64>::new().unwrap();
            let p = Process::new("single", &(op.to_string(), n, out.clone())).unwrap();
            p.start().unwrap();
            secs = Some(out.get().unwrap());
            p.join(None).unwrap();
        }
        "condition" => {
            let cond = Condition::new().unwrap();
            let turn = RawValue::new(0u64).unwrap();
            let p = Process::new("turns", &(cond.clone(), turn.clone(), n)).unwrap();
            p.start().unwrap();
            for i in 0..n {
                let _held = cond.lock().unwrap();
                cond.wait_for(|| turn.get().unwrap() == 2 * i, None)
                    .unwrap();
                turn.set(2 * i + 1).unwrap();
                cond.notify(1).unwrap();
            }
            p.join(None).unwrap();
            assert_eq!(turn.get().unwrap(), 2 * n);
        }
        "barrier" => {
            let b = Barrier::new(2).unwrap();
            let p = Process::new("rounds", &(b.clone(), n)).unwrap();
            p.start().unwrap();
            for _ in 0..n {
                b.wait(None).unwrap();
            }
            p.join(None).unwrap();
        }
        "event" => {
            let (ping, pong) = (Event::new().unwrap(), Event::new().unwrap());
            let p = Process::new("pongs", &(ping.clone(), pong.clone(), n)).unwrap();
            p.start().unwrap();
            for _ in 0..n {
                ping.set().unwrap();
                assert!(pong.wait(None).unwrap());
                pong.clear().unwrap();
            }
            p.join(None).unwrap();
            println!("op_s {:.6}", start.elapsed().as_secs_f64());
            println!("ops {}", 2 * n);
            return;
        }
        other => panic!("unknown op {other}"),
    }
    let secs = secs.unwrap_or_else(|| start.elapsed().as_secs_f64());
    println!("op_s {secs:.6}");
    println!("ops {n}");
}
