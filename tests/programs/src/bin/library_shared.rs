//! Targets that use the queues, pipe ends, events, locks and semaphores a Rust program
//! passes them (the library's `Host::queue`, `Host::pipe`, `Host::event`, `Host::lock` and
//! its siblings).

use std::time::Duration;
use wasmproc_guest::{
    BoundedSemaphore, Connection, ErrorKind, Event, Lock, Queue, RLock, Semaphore, targets,
};

/// Doubles the numbers on `jobs` onto `results` until a 0 comes.
fn doubler((jobs, results): (Queue<u32>, Queue<u64>)) {
    loop {
        let n = jobs.get().unwrap();
        if n == 0 {
            break;
        }
        results.put(&(u64::from(n) * 2)).unwrap();
    }
}

/// Sends back each message upper-cased, until end-of-file; then exits with how many.
fn echo(conn: Connection) {
    let mut n = 0;
    loop {
        match conn.recv::<String>() {
            Ok(text) => conn.send(&text.to_uppercase()).unwrap(),
            Err(e) if e.kind() == ErrorKind::Eof => break,
            Err(e) => panic!("{e}"),
        }
        n += 1;
    }
    wasmproc_guest::exit(n);
}

/// Waits for `go`; finds `lock` held by the Rust side and waits for it; takes both units of
/// `sem`; takes `rlock` twice; reports each step on `log`, then sets `done`.
#[allow(clippy::type_complexity)]
fn gatekeeper(
    (go, done, lock, rlock, sem, bounded, log): (
        Event,
        Event,
        Lock,
        RLock,
        Semaphore,
        BoundedSemaphore,
        Queue<String>,
    ),
) {
    let say = |s: String| log.put(&s).unwrap();
    say(format!("go: {}", go.wait(Duration::from_secs(30)).unwrap()));
    say(format!(
        "try_acquire the held lock: {}",
        lock.try_acquire().unwrap()
    ));
    say(format!(
        "acquire it: {}",
        lock.acquire_timeout(Duration::from_secs(30)).unwrap()
    ));
    lock.release().unwrap();
    say(format!(
        "semaphore: {} {} {}",
        sem.try_acquire().unwrap(),
        sem.try_acquire().unwrap(),
        sem.try_acquire().unwrap()
    ));
    say(format!(
        "rlock twice: {} {}",
        rlock.acquire().unwrap(),
        rlock.acquire().unwrap()
    ));
    rlock.release().unwrap();
    rlock.release().unwrap();
    say(format!(
        "bounded release too many: {}",
        bounded.release().unwrap_err().message()
    ));
    done.set().unwrap();
}

targets![doubler, echo, gatekeeper];

fn main() {}
