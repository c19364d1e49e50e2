//! CPython `TestWait`, in our words: `wait` over connections, a queue and process sentinels
//! together returns the ready ones in the order given; a connection is ready when a message
//! waits or at end-of-file, a queue when an item waits, a process once it has ended.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Connection, Event, Process, Queue, Sentinel, targets, wait};

const LONG: Duration = Duration::from_secs(30);

/// Once allowed, sends one message and returns.
fn sender((conn, go): (Connection, Event)) {
    go.wait(LONG).unwrap();
    conn.send("hello").unwrap();
}

/// Once allowed, puts one item and returns.
fn putter((q, go): (Queue<u32>, Event)) {
    go.wait(LONG).unwrap();
    q.put(&7).unwrap();
}

fn sleeper() {
    sleep_forever();
}

/// Sends `n` numbers, one per wait of the parent.
fn counter((conn, n): (Connection, u32)) {
    for i in 0..n {
        conn.send(&i).unwrap();
    }
}

targets![sender, putter, sleeper, counter];

struct Named(Vec<(Sentinel, &'static str)>);

impl Named {
    fn sentinels(&self) -> Vec<Sentinel> {
        self.0.iter().map(|(s, _)| *s).collect()
    }

    fn wait(&self, label: &str, timeout: impl Into<Option<Duration>>) {
        let r = wait(&self.sentinels(), timeout).map(|ready| {
            ready
                .iter()
                .map(|s| self.0.iter().find(|(x, _)| x == s).map_or("?", |(_, n)| *n))
                .collect::<Vec<_>>()
        });
        show!(label, r);
    }
}

fn main() {
    let (reader, writer) = pipe_pair();
    let q = Queue::<u32>::new().unwrap();
    let (go_send, go_put) = (Event::new().unwrap(), Event::new().unwrap());
    let sender = Process::new("sender", &(writer.clone(), go_send.clone())).unwrap();
    let putter = Process::new("putter", &(q.clone(), go_put.clone())).unwrap();
    let sleeper = Process::new("sleeper", &()).unwrap();
    for p in [&sender, &putter, &sleeper] {
        p.start().unwrap();
    }
    writer.close();
    let all = Named(vec![
        (reader.sentinel(), "pipe"),
        (q.sentinel(), "queue"),
        (sleeper.sentinel().unwrap(), "sleeper"),
    ]);
    all.wait("wait(0), nothing ready", Duration::ZERO);
    all.wait("wait(0.1), nothing ready", Duration::from_millis(100));

    go_send.set().unwrap();
    all.wait("wait after the sender was allowed", LONG);
    show!("recv", reader.recv::<String>());
    sender.join(None).unwrap();
    all.wait(
        "wait(0) after the sender ended (end-of-file)",
        Duration::ZERO,
    );
    show!("recv", reader.recv::<String>());

    go_put.set().unwrap();
    putter.join(None).unwrap();
    all.wait("wait after the putter ended", LONG);
    show!("get", q.get_nowait());
    all.wait("wait(0) after the get", Duration::ZERO);

    sleeper.terminate().unwrap();
    sleeper.join(None).unwrap();
    all.wait("wait after terminating the sleeper", LONG);

    println!("-- all ready at once, returned in the order given");
    let (a_in, a_out) = pipe_pair();
    let (b_in, b_out) = pipe_pair();
    let q2 = Queue::<u32>::new().unwrap();
    let quick = Process::new("counter", &(a_out.clone(), 0u32)).unwrap();
    quick.start().unwrap();
    quick.join(None).unwrap();
    a_out.send(&1u32).unwrap();
    b_out.send(&2u32).unwrap();
    q2.put(&3).unwrap();
    let everything = Named(vec![
        (q2.sentinel(), "queue"),
        (b_in.sentinel(), "pipe b"),
        (quick.sentinel().unwrap(), "quick"),
        (a_in.sentinel(), "pipe a"),
    ]);
    everything.wait("wait(None)", None);
    let reversed = Named(everything.0.iter().rev().cloned().collect());
    reversed.wait("wait(None), reversed", None);

    println!("-- draining a pipe through wait");
    let (r, w) = pipe_pair();
    let p = Process::new("counter", &(w.clone(), 5u32)).unwrap();
    p.start().unwrap();
    w.close();
    let mut got = Vec::new();
    loop {
        match wait(&[r.sentinel()], LONG) {
            Ok(ready) if ready.len() == 1 => match r.recv::<u32>() {
                Ok(n) => got.push(n),
                Err(e) => {
                    println!("ended with: {:?}", e.kind());
                    break;
                }
            },
            other => {
                show!("unexpected wait result", other.map(|v| v.len()));
                break;
            }
        }
    }
    println!("got: {got:?}");
    p.join(None).unwrap();
}

/// A one-way pipe: (reading end, writing end).
fn pipe_pair() -> (Connection, Connection) {
    wasmproc_guest::pipe(false).unwrap()
}
