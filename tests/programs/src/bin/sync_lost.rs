//! Nothing is lost: an item is in the queue (a message in the pipe) once `put` (`send`)
//! returns, whatever happens to the process next: it returns, calls `exit(3)`, panics, or
//! is killed.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Connection, Event, Process, Queue, targets};

const ITEMS: u32 = 200;

/// How the child ends after putting its items.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug)]
enum End {
    Return,
    Exit,
    Panic,
    Sleep,
}

fn put_then((q, conn, put, end): (Queue<(u32, String)>, Connection, Event, End)) {
    for i in 0..ITEMS {
        q.put(&(i, format!("item {i}"))).unwrap();
    }
    q.put_bytes(&vec![7u8; 100_000]).unwrap();
    conn.send(&format!("last words before {end:?}")).unwrap();
    put.set().unwrap();
    match end {
        End::Return => {}
        End::Exit => wasmproc_guest::exit(3),
        End::Panic => panic!("panic right after the puts"),
        End::Sleep => sleep_forever(),
    }
}

targets![put_then];

fn main() {
    for end in [End::Return, End::Exit, End::Panic, End::Sleep] {
        let q = Queue::<(u32, String)>::new().unwrap();
        let (conn, theirs) = wasmproc_guest::pipe(false).unwrap();
        let put = Event::new().unwrap();
        let p = Process::builder("put_then")
            .name(&format!("{end:?}"))
            .args(&(q.clone(), theirs.clone(), put.clone(), end))
            .unwrap()
            .build()
            .unwrap();
        p.start().unwrap();
        theirs.close();
        if let End::Sleep = end {
            show!(
                "the child has put everything",
                put.wait(Duration::from_secs(30))
            );
            p.kill().unwrap();
        }
        p.join(None).unwrap();
        let qsize = q.qsize();
        let items: Vec<(u32, String)> = (0..ITEMS).map_while(|_| q.get_nowait().ok()).collect();
        let in_order = items
            .iter()
            .enumerate()
            .all(|(i, (n, s))| *n == i as u32 && *s == format!("item {i}"));
        println!(
            "{end:?}: exitcode {:?}, qsize {}, items {} in order {in_order}, big item {}, message {}, then {}",
            p.exitcode().unwrap(),
            programs::fmt(&qsize),
            items.len(),
            match q.empty() {
                Ok(false) => programs::fmt(&q.get_bytes().map(|b| b.len())),
                other => format!("missing (empty: {})", programs::fmt(&other)),
            },
            programs::fmt(&conn.recv::<String>()),
            programs::fmt(&conn.recv::<String>()),
        );
        show!("  queue empty", q.empty());
    }
}
