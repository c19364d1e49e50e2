//! CPython `_TestBarrier` (Lib/test/_test_multiprocessing.py: test_barrier,
//! test_wait_return, test_action, test_abort, test_reset, test_abort_and_reset,
//! test_timeout, test_default_timeout, test_single_thread), in our words, plus what a party
//! or an action's runner that is killed leaves behind: a broken barrier.

use programs::{fmt, sleep_forever};
use std::cell::RefCell;
use std::time::Duration;
use wasmproc_guest::{Barrier, Process, Queue, RawValue, pool_fn, targets};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(100);

thread_local! {
    /// The round counter the barrier action of this process's barrier counts on.
    static ROUNDS: RefCell<Option<RawValue<u32>>> = const { RefCell::new(None) };
}

/// A barrier action: counts one more completed round.
fn count_round() {
    ROUNDS.with(|r| {
        if let Some(v) = &*r.borrow() {
            v.set(v.get().unwrap() + 1).unwrap();
        }
    });
}

/// A barrier action that never ends.
fn stall() {
    sleep_forever();
}

/// Waits `passes` times, reporting each pass's index and the round counter after it.
fn party((b, passes, rounds, out): (Barrier, u32, Option<RawValue<u32>>, Queue<String>)) {
    ROUNDS.with(|r| *r.borrow_mut() = rounds.clone());
    for pass in 0..passes {
        let got = b.wait(None);
        let after = rounds.as_ref().map(|v| v.get().unwrap());
        out.put(&format!("pass {pass}: {} rounds {after:?}", fmt(&got)))
            .unwrap();
    }
}

/// Waits once with `timeout`, reporting the outcome.
fn party_timeout((b, timeout, out): (Barrier, Option<Duration>, Queue<String>)) {
    out.put(&fmt(&b.wait(timeout))).unwrap();
}

targets![party, party_timeout; pool: count_round, stall];

/// Waits until `n` parties wait on `b`.
fn until_waiting(b: &Barrier, n: usize) {
    for _ in 0..3000 {
        if b.n_waiting().unwrap() == n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{n} parties never waited");
}

fn start(target: &str, args: &impl serde::Serialize) -> Process {
    let p = Process::new(target, args).unwrap();
    p.start().unwrap();
    p
}

/// `n` reports from `out`, sorted.
fn reports(out: &Queue<String>, n: usize) -> Vec<String> {
    let mut got: Vec<String> = (0..n).map(|_| out.get_timeout(LONG).unwrap()).collect();
    got.sort();
    got
}

fn exitcodes(procs: &[Process]) -> Vec<Option<i32>> {
    procs
        .iter()
        .map(|p| {
            p.join(LONG).unwrap();
            p.exitcode().unwrap()
        })
        .collect()
}

fn main() {
    let out = Queue::<String>::new().unwrap();

    println!("-- 4 parties, 3 passes (the main process is one)");
    let b = Barrier::new(4).unwrap();
    println!("parties: {}", b.parties());
    let procs: Vec<Process> = (0..3)
        .map(|_| {
            start(
                "party",
                &(b.clone(), 3u32, None::<RawValue<u32>>, out.clone()),
            )
        })
        .collect();
    for pass in 0..3 {
        until_waiting(&b, 3);
        let mine = b.wait(LONG).unwrap();
        let mut indexes = vec![mine];
        for r in reports(&out, 3) {
            let index = r.split(": ").nth(1).unwrap().split(' ').next().unwrap();
            indexes.push(index.parse().unwrap());
        }
        indexes.sort_unstable();
        println!("pass {pass}: indexes {indexes:?}");
    }
    println!("exitcodes: {:?}", exitcodes(&procs));
    println!(
        "n_waiting: {}, broken: {}",
        b.n_waiting().unwrap(),
        b.broken().unwrap()
    );

    println!("-- an action, run before any party is released");
    let rounds = RawValue::new(0u32).unwrap();
    ROUNDS.with(|r| *r.borrow_mut() = Some(rounds.clone()));
    let b = Barrier::builder(3)
        .action(pool_fn!(count_round))
        .build()
        .unwrap();
    let procs: Vec<Process> = (0..3)
        .map(|_| {
            start(
                "party",
                &(b.clone(), 2u32, Some(rounds.clone()), out.clone()),
            )
        })
        .collect();
    for r in reports(&out, 6) {
        // Every party of round k sees k rounds counted: the action ran first.
        println!(
            "{}",
            r.replace(": 0 ", ": i ")
                .replace(": 1 ", ": i ")
                .replace(": 2 ", ": i ")
        );
    }
    println!("exitcodes: {:?}", exitcodes(&procs));
    println!("rounds: {}", rounds.get().unwrap());

    println!("-- abort, then reset");
    let b = Barrier::new(4).unwrap();
    let procs: Vec<Process> = (0..3)
        .map(|_| start("party_timeout", &(b.clone(), None::<Duration>, out.clone())))
        .collect();
    until_waiting(&b, 3);
    println!("abort: {}", fmt(&b.abort()));
    for r in reports(&out, 3) {
        println!("waiting party: {r}");
    }
    println!("exitcodes: {:?}", exitcodes(&procs));
    println!("broken: {}", b.broken().unwrap());
    println!("wait on a broken barrier: {}", fmt(&b.wait(SHORT)));
    println!("reset: {}", fmt(&b.reset()));
    println!("broken: {}", b.broken().unwrap());
    let procs: Vec<Process> = (0..3)
        .map(|_| start("party_timeout", &(b.clone(), None::<Duration>, out.clone())))
        .collect();
    until_waiting(&b, 3);
    println!("main's wait: {}", fmt(&b.wait(LONG)));
    println!("parties: {:?}", reports(&out, 3));
    println!("exitcodes: {:?}", exitcodes(&procs));

    println!("-- reset while parties wait");
    let b = Barrier::new(4).unwrap();
    let procs: Vec<Process> = (0..3)
        .map(|_| start("party_timeout", &(b.clone(), None::<Duration>, out.clone())))
        .collect();
    until_waiting(&b, 3);
    println!("reset: {}", fmt(&b.reset()));
    for r in reports(&out, 3) {
        println!("waiting party: {r}");
    }
    println!("exitcodes: {:?}", exitcodes(&procs));
    println!(
        "broken: {}, n_waiting: {}",
        b.broken().unwrap(),
        b.n_waiting().unwrap()
    );
    let procs: Vec<Process> = (0..3)
        .map(|_| start("party_timeout", &(b.clone(), None::<Duration>, out.clone())))
        .collect();
    until_waiting(&b, 3);
    println!("main's wait after the reset: {}", fmt(&b.wait(LONG)));
    println!("parties: {:?}", reports(&out, 3));
    println!("exitcodes: {:?}", exitcodes(&procs));

    println!("-- a timeout breaks the barrier");
    let b = Barrier::new(3).unwrap();
    let slow = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    until_waiting(&b, 1);
    println!("main's wait(0.1): {}", fmt(&b.wait(SHORT)));
    println!("the other party: {}", out.get_timeout(LONG).unwrap());
    println!("exitcodes: {:?}", exitcodes(&[slow]));
    println!("broken: {}", b.broken().unwrap());

    println!("-- the default timeout");
    let b = Barrier::builder(2).timeout(SHORT).build().unwrap();
    println!("wait(None): {}", fmt(&b.wait(None)));
    println!("broken: {}", b.broken().unwrap());

    println!("-- one party");
    let b = Barrier::new(1).unwrap();
    println!("wait: {}", fmt(&b.wait(None)));
    println!("wait: {}", fmt(&b.wait(None)));

    println!("-- a waiting party is killed");
    let b = Barrier::new(3).unwrap();
    let victim = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    let other = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    until_waiting(&b, 2);
    victim.kill().unwrap();
    println!("the other party: {}", out.get_timeout(LONG).unwrap());
    println!("exitcodes: {:?}", exitcodes(&[victim, other]));
    println!("broken: {}", b.broken().unwrap());

    println!("-- the action's runner is killed");
    let b = Barrier::builder(3).action(pool_fn!(stall)).build().unwrap();
    let first = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    let second = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    until_waiting(&b, 2);
    let runner = start("party_timeout", &(b.clone(), None::<Duration>, out.clone()));
    // The runner's arrival ends the filling: nobody counts as waiting while it acts.
    until_waiting(&b, 0);
    runner.kill().unwrap();
    println!("parties: {:?}", reports(&out, 2));
    println!("exitcodes: {:?}", exitcodes(&[first, second, runner]));
    println!("broken: {}", b.broken().unwrap());

    println!("-- bad arguments");
    println!("Barrier::new(0): {}", fmt(&Barrier::new(0)));
}
