//! CPython `_TestCondition` (Lib/test/_test_multiprocessing.py: test_notify,
//! test_notify_n, test_notify_all, test_timeout, test_waitfor, test_waitfor_timeout,
//! test_wait_result), in our words, plus the errors CPython raises as `RuntimeError` and
//! what a process ending while holding the lock or while waiting leaves behind.

use programs::{show, sleep_forever};
use std::time::{Duration, Instant};
use wasmproc_guest::{Condition, Event, Lock, Process, Queue, RLock, Semaphore, Value, targets};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(100);

/// Waits on the condition, counting itself in `sleeping` before and `woken` after.
fn sleeper((cond, sleeping, woken): (Condition, Semaphore, Semaphore)) {
    cond.acquire().unwrap();
    sleeping.release().unwrap();
    cond.wait(None).unwrap();
    woken.release().unwrap();
    cond.release().unwrap();
}

/// Waits until `state` is 4; reports what `wait_for` returned.
fn wait_for_four((cond, state, result): (Condition, Value<i32>, Queue<bool>)) {
    cond.acquire().unwrap();
    let got = cond.wait_for(|| state.get().unwrap() == 4, LONG).unwrap();
    result.put(&got).unwrap();
    cond.release().unwrap();
}

/// Notifies once it holds the lock.
fn notifier(cond: Condition) {
    let _held = cond.lock().unwrap();
    cond.notify(1).unwrap();
}

/// Takes the lock, says so, and sleeps until killed.
fn hold_lock((cond, held): (Condition, Event)) {
    cond.acquire().unwrap();
    held.set().unwrap();
    sleep_forever();
}

targets![sleeper, wait_for_four, notifier, hold_lock];

struct Sleepers {
    cond: Condition,
    sleeping: Semaphore,
    woken: Semaphore,
    procs: Vec<Process>,
}

impl Sleepers {
    fn start(cond: &Condition, n: usize) -> Sleepers {
        let sleeping = Semaphore::new(0).unwrap();
        let woken = Semaphore::new(0).unwrap();
        let procs: Vec<Process> = (0..n)
            .map(|_| {
                Process::new("sleeper", &(cond.clone(), sleeping.clone(), woken.clone())).unwrap()
            })
            .collect();
        for p in &procs {
            p.start().unwrap();
        }
        for _ in 0..n {
            assert!(sleeping.acquire_timeout(LONG).unwrap());
        }
        Sleepers {
            cond: cond.clone(),
            sleeping,
            woken,
            procs,
        }
    }

    /// Holds the lock (so every sleeper that counted itself is waiting), then notifies.
    fn notify(&self, n: Option<u32>) {
        let _held = self.cond.lock().unwrap();
        match n {
            Some(n) => self.cond.notify(n).unwrap(),
            None => self.cond.notify_all().unwrap(),
        }
    }

    /// Waits for `n` sleepers to wake, then checks that no other does.
    fn woke(&self, n: usize) -> String {
        let mut woke = 0;
        while woke < n && self.woken.acquire_timeout(LONG).unwrap() {
            woke += 1;
        }
        let more = self.woken.acquire_timeout(SHORT).unwrap();
        format!("{woke} woke, more: {more}")
    }

    fn join(self) {
        for p in &self.procs {
            p.join(LONG).unwrap();
        }
        let codes: Vec<_> = self.procs.iter().map(|p| p.exitcode().unwrap()).collect();
        println!("sleepers' exitcodes: {codes:?}");
        drop(self.sleeping);
    }
}

fn main() {
    println!("-- notify");
    let cond = Condition::new().unwrap();
    let s = Sleepers::start(&cond, 3);
    println!("before notify: {}", s.woke(0));
    s.notify(Some(1));
    println!("after notify(1): {}", s.woke(1));
    s.notify(Some(1));
    println!("after notify(1): {}", s.woke(1));
    s.notify(Some(1));
    println!("after notify(1): {}", s.woke(1));
    s.join();

    println!("-- notify_n");
    let s = Sleepers::start(&cond, 5);
    s.notify(Some(2));
    println!("after notify(2): {}", s.woke(2));
    s.notify(Some(4));
    println!("after notify(4) with 3 waiting: {}", s.woke(3));
    s.notify(Some(4));
    println!("after notify(4) with none waiting: {}", s.woke(0));
    s.join();

    println!("-- notify_all");
    let s = Sleepers::start(&cond, 4);
    s.notify(None);
    println!("after notify_all: {}", s.woke(4));
    s.join();

    println!("-- timeout");
    cond.acquire().unwrap();
    let start = Instant::now();
    show!("wait(0.1)", cond.wait(SHORT));
    println!(
        "waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    cond.release().unwrap();

    println!("-- wait_for");
    let state = Value::new(0i32).unwrap();
    let result = Queue::<bool>::new().unwrap();
    let p = Process::new(
        "wait_for_four",
        &(cond.clone(), state.clone(), result.clone()),
    )
    .unwrap();
    p.start().unwrap();
    for i in 1..=4 {
        std::thread::sleep(Duration::from_millis(10));
        let _held = cond.lock().unwrap();
        state.set(i).unwrap();
        cond.notify_all().unwrap();
    }
    show!("child's wait_for", result.get());
    p.join(LONG).unwrap();
    show!("child exitcode", p.exitcode());

    println!("-- wait_for timeout");
    cond.acquire().unwrap();
    let start = Instant::now();
    show!("wait_for(false, 0.1)", cond.wait_for(|| false, SHORT));
    println!(
        "waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    show!("wait_for(true, 0)", cond.wait_for(|| true, Duration::ZERO));
    cond.release().unwrap();

    println!("-- wait result");
    cond.acquire().unwrap();
    let p = Process::new("notifier", &cond).unwrap();
    p.start().unwrap();
    show!("wait(60) notified", cond.wait(LONG));
    show!("wait(0.1) not notified", cond.wait(SHORT));
    cond.release().unwrap();
    p.join(LONG).unwrap();

    println!("-- without the lock");
    show!("wait", cond.wait(SHORT));
    show!("notify", cond.notify(1));
    show!("notify_all", cond.notify_all());
    let plain = Condition::with_lock(Lock::new().unwrap()).unwrap();
    show!("Lock: wait without it", plain.wait(SHORT));
    plain.acquire().unwrap();
    show!("Lock: wait(0.01)", plain.wait(Duration::from_millis(10)));
    show!("Lock: notify", plain.notify(1));
    show!("Lock: release", plain.release());
    show!("Lock: release again", plain.release());
    let rlock = RLock::new().unwrap();
    let nested = Condition::with_rlock(rlock.clone()).unwrap();
    rlock.acquire().unwrap();
    rlock.acquire().unwrap();
    show!(
        "RLock held twice: wait(0.01)",
        nested.wait(Duration::from_millis(10))
    );
    show!("release", rlock.release());
    show!("release", rlock.release());
    show!("release a third time", rlock.release());

    println!("-- the lock's holder is killed");
    let held = Event::new().unwrap();
    let p = Process::builder("hold_lock")
        .name("holder")
        .args(&(cond.clone(), held.clone()))
        .unwrap()
        .build()
        .unwrap();
    p.start().unwrap();
    show!("holder holds it", held.wait(LONG));
    p.kill().unwrap();
    p.join(LONG).unwrap();
    show!("acquire", cond.acquire_timeout(LONG));
    show!("notify (the caller holds it)", cond.notify(1));
    show!("release", cond.release());

    println!("-- a waiter is killed");
    let s = Sleepers::start(&cond, 2);
    // Once the lock is free, both sleepers wait (neither holds it when killed).
    drop(cond.lock().unwrap());
    s.procs[0].kill().unwrap();
    s.procs[0].join(LONG).unwrap();
    s.notify(Some(1));
    println!("after notify(1): {}", s.woke(1));
    s.join();
}
