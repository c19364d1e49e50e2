//! Sync objects passed inside queue items and pipe messages: whoever takes the item holds
//! them from then on, under the same handles (and the sender still does); a pipe end and a
//! queue travel too; a closed object cannot, nor can one go into a managed dictionary; a
//! queue put into itself is harmless.

use programs::show;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wasmproc_guest::{Connection, Event, Lock, Manager, Process, Queue, pipe, targets};

const LONG: Duration = Duration::from_secs(30);

/// A queue whose items are queues of the same kind.
#[derive(Serialize, Deserialize)]
struct Nest(Queue<Nest>);

/// Takes a parcel from `inbox`, uses what is in it, answers through the queue in it; then
/// takes a pipe end from `inbox`'s second parcel and talks through it.
fn courier((inbox, ends): (Queue<(Event, Lock, Queue<String>)>, Queue<Connection>)) {
    let (done, lock, reply) = inbox.get().unwrap();
    show!(
        "courier: try_acquire the lock main holds",
        lock.try_acquire()
    );
    reply.put(&"hello from the courier".to_string()).unwrap();
    done.set().unwrap();
    let end = ends.get().unwrap();
    show!(
        "courier: recv through the end it was sent",
        end.recv::<String>()
    );
    end.send(&"pong".to_string()).unwrap();
}

/// Receives a queue through `conn` and puts a number on it.
fn receiver(conn: Connection) {
    let q: Queue<u32> = conn.recv().unwrap();
    q.put(&42).unwrap();
}

targets![courier, receiver];

fn main() {
    println!("-- objects in a queue item");
    let inbox = Queue::<(Event, Lock, Queue<String>)>::new().unwrap();
    let ends = Queue::<Connection>::new().unwrap();
    let p = Process::new("courier", &(inbox.clone(), ends.clone())).unwrap();
    p.start().unwrap();
    let (done, lock, reply) = (
        Event::new().unwrap(),
        Lock::new().unwrap(),
        Queue::<String>::new().unwrap(),
    );
    assert!(lock.acquire().unwrap());
    show!(
        "put a parcel",
        inbox.put(&(done.clone(), lock.clone(), reply.clone()))
    );
    show!("reply", reply.get_timeout(LONG));
    show!("done", done.wait(LONG));
    lock.release().unwrap();

    println!("-- a pipe end in a queue item");
    let (mine, theirs) = pipe(true).unwrap();
    show!("put the end", ends.put(&theirs));
    drop(theirs);
    mine.send(&"ping".to_string()).unwrap();
    show!("recv", mine.recv::<String>());
    p.join(None).unwrap();
    show!("courier exitcode", p.exitcode());
    println!(
        "the courier's end is gone: {:?}",
        mine.recv::<String>().map_err(|e| e.kind())
    );

    println!("-- a queue in a pipe message");
    let (mine, theirs) = pipe(true).unwrap();
    let p = Process::new("receiver", &theirs).unwrap();
    p.start().unwrap();
    let q = Queue::<u32>::new().unwrap();
    show!("send the queue", mine.send(&q));
    show!("get what the receiver put", q.get_timeout(LONG));
    p.join(None).unwrap();
    show!("receiver exitcode", p.exitcode());

    println!("-- what cannot be passed");
    let closed = Queue::<u32>::new().unwrap();
    closed.close();
    let queues = Queue::<Queue<u32>>::new().unwrap();
    show!("put a closed queue", queues.put(&closed));
    show!("the queue is still empty", queues.empty());
    let manager = Manager::new();
    let dict = manager.dict::<String, Event>().unwrap();
    show!(
        "an event as a dictionary value",
        dict.set(&"e".to_string(), &done)
    );

    println!("-- a queue put into itself");
    let nest = Queue::<Nest>::new().unwrap();
    show!("put", nest.put(&Nest(nest.clone())));
    let Nest(inner) = nest.get().unwrap();
    println!(
        "the queue taken out is the same queue: {}",
        inner.handle() == nest.handle()
    );
    show!("put again, and leave it there", nest.put(&Nest(inner)));
}
