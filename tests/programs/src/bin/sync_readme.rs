//! The example of README.md's "Queues, pipes, events, locks and pools" section, verbatim but
//! for the last line it prints: `tests/all/sync.rs::sync_readme` checks that it runs.

use wasmproc_guest::{Lock, Pool, Process, Queue, pipe, pool_fn, targets};

fn producer((q, lock): (Queue<String>, Lock)) {
    let _held = lock.lock().unwrap(); // released when dropped
    q.put(&"hello".to_string()).unwrap(); // in the queue once put returns
}

fn echo(conn: wasmproc_guest::Connection) {
    while let Ok(msg) = conn.recv::<u32>() {
        // Err(Eof) once the parent closed its end
        conn.send(&(msg + 1)).unwrap();
    }
}

fn square(x: u64) -> u64 {
    x * x
}

targets![producer, echo; pool: square]; // pool functions are registered after `pool:`

fn main() -> Result<(), wasmproc_guest::Error> {
    let (q, lock) = (Queue::<String>::new()?, Lock::new()?);
    let p = Process::new("producer", &(q.clone(), lock.clone()))?; // the child holds both
    p.start()?;
    assert_eq!(q.get()?, "hello");

    let (mine, theirs) = pipe(true)?;
    let e = Process::new("echo", &theirs)?;
    e.start()?;
    theirs.close(); // only the child holds that end now
    mine.send(&41u32)?;
    assert_eq!(mine.recv::<u32>()?, 42);
    mine.close(); // the child's recv gets Eof; it returns

    let pool = Pool::new(2)?;
    assert_eq!(pool.map(pool_fn!(square), [1, 2, 3])?, [1, 4, 9]);
    let r = pool.apply_async(pool_fn!(square), 7)?;
    assert_eq!(r.get(std::time::Duration::from_secs(5))?, 49);
    pool.close()?;
    pool.join()?;
    p.join(None)?;
    e.join(None)?;
    println!(
        "readme example: exit codes {:?} {:?}",
        p.exitcode()?,
        e.exitcode()?
    );
    Ok(())
}
