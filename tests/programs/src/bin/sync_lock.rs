//! CPython `_TestLock` (`test_lock`, `test_rlock`, `test_lock_context`), in our words, plus
//! the same locks across processes: a lock another process holds cannot be taken until it
//! is released, any holder may release a `Lock`, only the owner may release an `RLock`.

use programs::show;
use std::time::{Duration, Instant};
use wasmproc_guest::{Event, Lock, Process, RLock, targets};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(100);

/// Takes the lock, reports that, waits for permission, releases it.
fn hold_lock((lock, held, may_release): (Lock, Event, Event)) {
    show!("child acquire", lock.acquire());
    held.set().unwrap();
    may_release.wait(LONG).unwrap();
    show!("child release", lock.release());
}

/// Releases a lock some other process acquired.
fn release_lock(lock: Lock) {
    show!("child release of the parent's Lock", lock.release());
}

/// Tries to release and take an RLock the parent owns.
fn release_rlock(lock: RLock) {
    show!("child release of the parent's RLock", lock.release());
    show!(
        "child try_acquire of the parent's RLock",
        lock.try_acquire()
    );
    show!(
        "child acquire_timeout(0.1) of the parent's RLock",
        lock.acquire_timeout(SHORT)
    );
}

/// Takes the RLock twice, reports that, waits for permission, releases twice.
fn hold_rlock((lock, held, may_release): (RLock, Event, Event)) {
    show!("child acquire", lock.acquire());
    show!("child acquire again", lock.acquire());
    held.set().unwrap();
    may_release.wait(LONG).unwrap();
    show!("child release", lock.release());
    show!("child release", lock.release());
}

targets![hold_lock, release_lock, release_rlock, hold_rlock];

fn test_lock() {
    println!("-- lock");
    let lock = Lock::new().unwrap();
    show!("acquire", lock.acquire());
    show!("try_acquire", lock.try_acquire());
    let start = Instant::now();
    show!("acquire_timeout(0.1)", lock.acquire_timeout(SHORT));
    println!(
        "waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    show!("release", lock.release());
    show!("release again", lock.release());
    show!("try_acquire", lock.try_acquire());
    show!("release", lock.release());
}

fn test_rlock() {
    println!("-- rlock");
    let lock = RLock::new().unwrap();
    show!("acquire", lock.acquire());
    show!("acquire", lock.acquire());
    show!("try_acquire", lock.try_acquire());
    show!("acquire_timeout(0.1)", lock.acquire_timeout(SHORT));
    for _ in 0..4 {
        show!("release", lock.release());
    }
    show!("release once more", lock.release());
}

fn test_lock_context() {
    println!("-- lock context");
    let lock = Lock::new().unwrap();
    {
        let guard = lock.lock();
        println!("guard taken: {}", guard.is_ok());
        show!("try_acquire while the guard lives", lock.try_acquire());
    }
    show!("try_acquire after the guard", lock.try_acquire());
    show!("release", lock.release());
    let rlock = RLock::new().unwrap();
    {
        let outer = rlock.lock();
        let inner = rlock.lock();
        println!("nested guards taken: {}", outer.is_ok() && inner.is_ok());
    }
    show!("rlock release after the guards", rlock.release());
}

fn across_processes() {
    println!("-- lock held by a child");
    let lock = Lock::new().unwrap();
    let (held, may_release) = (Event::new().unwrap(), Event::new().unwrap());
    let p = Process::new(
        "hold_lock",
        &(lock.clone(), held.clone(), may_release.clone()),
    )
    .unwrap();
    p.start().unwrap();
    show!("child holds it", held.wait(LONG));
    show!("try_acquire", lock.try_acquire());
    show!("acquire_timeout(0.1)", lock.acquire_timeout(SHORT));
    may_release.set().unwrap();
    show!("acquire (waits for the child)", lock.acquire_timeout(LONG));
    show!("release", lock.release());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());

    println!("-- a child releases the parent's Lock");
    show!("acquire", lock.acquire());
    let p = Process::new("release_lock", &lock).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    show!(
        "try_acquire after the child released it",
        lock.try_acquire()
    );
    show!("release", lock.release());

    println!("-- a child cannot release the parent's RLock");
    let rlock = RLock::new().unwrap();
    show!("acquire", rlock.acquire());
    let p = Process::new("release_rlock", &rlock).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    show!("release", rlock.release());

    println!("-- RLock held twice by a child");
    let (held, may_release) = (Event::new().unwrap(), Event::new().unwrap());
    let p = Process::new(
        "hold_rlock",
        &(rlock.clone(), held.clone(), may_release.clone()),
    )
    .unwrap();
    p.start().unwrap();
    show!("child holds it", held.wait(LONG));
    show!("try_acquire", rlock.try_acquire());
    show!("release of the child's RLock", rlock.release());
    may_release.set().unwrap();
    show!("acquire (waits for the child)", rlock.acquire_timeout(LONG));
    show!("release", rlock.release());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn main() {
    test_lock();
    test_rlock();
    test_lock_context();
    across_processes();
}
