//! Processes killed (SIGKILL) at arbitrary points of acquiring, holding and releasing a
//! Lock and an RLock, round after round: afterwards the lock is never stuck (the next
//! acquire succeeds in time, or reports `OwnerDied` when a victim held it), no victim still
//! holds it, and a count kept under the lock was changed only by whoever held it.

use std::time::Duration;
use wasmproc_guest::{ErrorKind, Event, Lock, Process, RLock, RawValue, targets};

const ROUNDS: u64 = 20;
const VICTIMS: usize = 3;

/// Adds one to `count` under `lock`, forever; sets `going` after the first. (Killed one
/// after the other, a victim may take the lock from one killed before it.)
fn hammer((lock, count, going): (Lock, RawValue<u64>, Event)) {
    loop {
        assert!(taken(lock.acquire()));
        count.set(count.get().unwrap() + 1).unwrap();
        lock.release().unwrap();
        going.set().unwrap();
    }
}

/// As `hammer`, holding an RLock twice.
fn rhammer((lock, count, going): (RLock, RawValue<u64>, Event)) {
    loop {
        assert!(taken(lock.acquire()));
        assert!(lock.acquire().unwrap());
        count.set(count.get().unwrap() + 1).unwrap();
        lock.release().unwrap();
        lock.release().unwrap();
        going.set().unwrap();
    }
}

targets![hammer, rhammer];

/// Whether an acquire that may follow a killed owner took the lock (from a dead owner too).
fn taken(r: Result<bool, wasmproc_guest::Error>) -> bool {
    match r {
        Ok(true) => true,
        Err(e) if e.kind() == ErrorKind::OwnerDied => true,
        other => panic!("the acquire after the kill gave {other:?}"),
    }
}

fn round(
    target: &str,
    i: u64,
    acquire: &dyn Fn() -> Result<bool, wasmproc_guest::Error>,
    release: &dyn Fn(),
    args: &dyn Fn(Event) -> Process,
) {
    let mut victims = Vec::new();
    for _ in 0..VICTIMS {
        let going = Event::new().unwrap();
        let p = args(going.clone());
        p.start().unwrap();
        victims.push((p, going));
    }
    for (_, going) in &victims {
        assert!(
            going.wait(Duration::from_secs(30)).unwrap(),
            "{target} never went"
        );
    }
    // A different moment of the victims' loops in each round.
    std::thread::sleep(Duration::from_micros(300 * (i % 7)));
    for (p, _) in &victims {
        p.kill().unwrap();
    }
    for (p, _) in &victims {
        p.join(None).unwrap();
        assert_eq!(p.exitcode().unwrap(), Some(-9));
    }
    // Taken within the timeout: never stuck behind a dead process.
    let start = std::time::Instant::now();
    assert!(taken(acquire()), "{target} round {i}");
    assert!(start.elapsed() < Duration::from_secs(10));
    release();
}

fn main() {
    let lock = Lock::new().unwrap();
    let count = RawValue::new(0u64).unwrap();
    for i in 0..ROUNDS {
        round(
            "hammer",
            i,
            &|| lock.acquire_timeout(Duration::from_secs(10)),
            &|| lock.release().unwrap(),
            &|going| Process::new("hammer", &(lock.clone(), count.clone(), going)).unwrap(),
        );
        // Held here, nobody else can change the count.
        assert!(lock.acquire().unwrap());
        let before = count.get().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(count.get().unwrap(), before);
        assert!(!lock.try_acquire().unwrap());
        lock.release().unwrap();
    }
    println!("Lock: {ROUNDS} rounds of {VICTIMS} killed processes, never stuck");

    let rlock = RLock::new().unwrap();
    for i in 0..ROUNDS {
        round(
            "rhammer",
            i,
            &|| rlock.acquire_timeout(Duration::from_secs(10)),
            &|| rlock.release().unwrap(),
            &|going| Process::new("rhammer", &(rlock.clone(), count.clone(), going)).unwrap(),
        );
        assert!(rlock.acquire().unwrap());
        let before = count.get().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(count.get().unwrap(), before);
        rlock.release().unwrap();
        // Released fully: a release more is refused.
        assert_eq!(
            rlock.release().unwrap_err().message(),
            "cannot release un-acquired lock"
        );
    }
    println!("RLock: {ROUNDS} rounds of {VICTIMS} killed processes, never stuck");
    assert!(count.get().unwrap() >= 2 * ROUNDS * VICTIMS as u64);
    println!("count went up in every round");
}
