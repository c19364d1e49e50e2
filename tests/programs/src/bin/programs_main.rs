//! Starts children that run another program the host allows (`Builder::program`), passes
//! one of them a queue, and shows the errors for a program the host does not allow and for
//! targets that are not in the program named.

use programs::show;
use wasmproc_guest::{Process, Queue, targets};

/// A target only this program has.
fn local() {}

/// A child that starts a child of the other program itself.
fn nested() {
    let p = Process::builder("greet")
        .program("other")
        .args(&"from a child".to_string())
        .unwrap()
        .build()
        .unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    println!("nested: grandchild exitcode {:?}", p.exitcode().unwrap());
}

targets![local, nested];

fn main() {
    let p = Process::builder("greet")
        .program("other")
        .args(&"world".to_string())
        .unwrap()
        .build()
        .unwrap();
    show!("start", p.start());
    show!("join", p.join(None));
    show!("exitcode", p.exitcode());

    let q = Queue::<String>::new().unwrap();
    let r = Process::builder("reply")
        .program("other")
        .args(&q)
        .unwrap()
        .build()
        .unwrap();
    r.start().unwrap();
    show!("from the queue", q.get());
    r.join(None).unwrap();
    show!("reply exitcode", r.exitcode());

    let n = Process::new("nested", &()).unwrap();
    n.start().unwrap();
    n.join(None).unwrap();
    show!("nested exitcode", n.exitcode());

    show!(
        "a program the host does not allow",
        Process::builder("greet")
            .program("nope")
            .build()
            .map(|_| ())
    );
    show!(
        "this program's target in the other",
        Process::builder("local")
            .program("other")
            .build()
            .map(|_| ())
    );
    show!(
        "the other's target in this program",
        Process::builder("greet").build().map(|_| ())
    );
}
