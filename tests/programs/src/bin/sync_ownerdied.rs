//! A process that ends while it owns a Lock or RLock (terminated, killed, returning,
//! panicking, or dropping its handle) releases it; the next acquirer gets `OwnerDied` and
//! holds the lock, and the acquirers after it see an ordinary lock: no deadlock.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Event, Lock, Process, RLock, targets};

const LONG: Duration = Duration::from_secs(30);

#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
enum Then {
    Sleep,
    Return,
    Panic,
    DropHandle,
}

/// Takes the lock, says so, then ends (or waits to be ended) as told.
fn take_lock((lock, held, then): (Lock, Event, Then)) {
    lock.acquire().unwrap();
    match then {
        Then::DropHandle => {
            drop(lock);
            held.set().unwrap();
            sleep_forever();
        }
        _ => held.set().unwrap(),
    }
    match then {
        Then::Sleep | Then::DropHandle => sleep_forever(),
        Then::Return => {}
        Then::Panic => panic!("panic while holding the lock"),
    }
}

/// Takes the RLock twice, says so, sleeps until ended.
fn take_rlock((lock, held): (RLock, Event)) {
    lock.acquire().unwrap();
    lock.acquire().unwrap();
    held.set().unwrap();
    sleep_forever();
}

/// Acquires after the owner died: an ordinary acquire.
fn third(lock: Lock) {
    show!("third acquire", lock.acquire_timeout(LONG));
    show!("third release", lock.release());
}

/// Blocks in acquire until the owner dies.
fn blocked((lock, waiting): (Lock, Event)) {
    waiting.set().unwrap();
    show!("blocked acquire", lock.acquire_timeout(LONG));
    show!("blocked try_acquire while holding", lock.try_acquire());
    show!("blocked release", lock.release());
}

targets![take_lock, take_rlock, third, blocked];

fn lock_owner_ends(label: &str, then: Then, signal: Option<&str>) {
    println!("-- Lock: owner {label}");
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let owner = Process::builder("take_lock")
        .name(label)
        .args(&(lock.clone(), held.clone(), then))
        .unwrap()
        .build()
        .unwrap();
    owner.start().unwrap();
    show!("owner holds it", held.wait(LONG));
    match signal {
        Some("terminate") => owner.terminate().unwrap(),
        Some("kill") => owner.kill().unwrap(),
        _ => {}
    }
    if let Then::DropHandle = then {
        // The owner is still alive; it only gave up its handle.
    } else {
        owner.join(None).unwrap();
        show!("owner exitcode", owner.exitcode());
    }
    show!("next acquire", lock.acquire_timeout(LONG));
    show!(
        "try_acquire (the next acquirer holds it)",
        lock.try_acquire()
    );
    show!("release", lock.release());
    let third = Process::builder("third")
        .name(&format!("third/{label}"))
        .args(&lock)
        .unwrap()
        .build()
        .unwrap();
    third.start().unwrap();
    third.join(None).unwrap();
    show!("third exitcode", third.exitcode());
    show!("acquire afterwards", lock.acquire_timeout(LONG));
    show!("release", lock.release());
    if let Then::DropHandle = then {
        owner.kill().unwrap();
        owner.join(None).unwrap();
    }
}

fn rlock_owner_killed() {
    println!("-- RLock: owner killed while holding it twice");
    let lock = RLock::new().unwrap();
    let held = Event::new().unwrap();
    let owner = Process::new("take_rlock", &(lock.clone(), held.clone())).unwrap();
    owner.start().unwrap();
    show!("owner holds it", held.wait(LONG));
    owner.kill().unwrap();
    owner.join(None).unwrap();
    show!("owner exitcode", owner.exitcode());
    show!("next acquire", lock.acquire_timeout(LONG));
    show!("acquire again (recursion)", lock.acquire());
    show!("release", lock.release());
    show!("release", lock.release());
    show!("release too many", lock.release());
    show!("acquire afterwards", lock.acquire());
    show!("release", lock.release());
}

fn waiter_sees_owner_die() {
    println!("-- Lock: a blocked acquirer sees the owner die");
    let lock = Lock::new().unwrap();
    let held = Event::new().unwrap();
    let owner = Process::new("take_lock", &(lock.clone(), held.clone(), Then::Sleep)).unwrap();
    owner.start().unwrap();
    show!("owner holds it", held.wait(LONG));
    let waiting = Event::new().unwrap();
    let b = Process::builder("blocked")
        .name("blocked")
        .args(&(lock.clone(), waiting.clone()))
        .unwrap()
        .build()
        .unwrap();
    b.start().unwrap();
    show!("blocked is about to acquire", waiting.wait(LONG));
    // Let the blocked process reach its acquire; either way it is the next acquirer.
    std::thread::sleep(Duration::from_millis(200));
    owner.kill().unwrap();
    owner.join(None).unwrap();
    b.join(None).unwrap();
    show!("blocked exitcode", b.exitcode());
    show!("acquire afterwards", lock.acquire_timeout(LONG));
    show!("release", lock.release());
}

fn main() {
    lock_owner_ends("terminated", Then::Sleep, Some("terminate"));
    lock_owner_ends("killed", Then::Sleep, Some("kill"));
    lock_owner_ends("returned", Then::Return, None);
    lock_owner_ends("panicked", Then::Panic, None);
    lock_owner_ends("dropped its handle", Then::DropHandle, None);
    rlock_owner_killed();
    waiter_sees_owner_die();
}
