//! Target return values (wasmproc's own; Python's `Process` has none): a parent reads the
//! value its child's target returned once the child has ended with exit code 0, and none
//! when it ended in any other way; a value over the `args` limit is not kept, and the child
//! fails. With the argument `big N`, main starts one child that returns N bytes.

use programs::show;
use std::time::Duration;
use wasmproc_guest::{Event, Process, targets};

fn square(x: u64) -> u64 {
    x * x
}

fn greet(name: String) -> (String, u32) {
    (format!("hello {name}"), name.len() as u32)
}

fn unit() {}

fn exits() -> u64 {
    wasmproc_guest::exit(3)
}

fn panics() -> u64 {
    panic!("no result")
}

/// Returns 11 once `go` is set.
fn waits(go: Event) -> u32 {
    go.wait(Duration::from_secs(30)).unwrap();
    11
}

fn sleeps() -> u32 {
    programs::sleep_forever();
    0
}

fn big(n: usize) -> Vec<u8> {
    vec![7; n]
}

targets![square, greet, unit, exits, panics, waits, sleeps, big];

fn ended<A: serde::Serialize>(target: &str, args: &A) -> Process {
    let p = Process::builder(target)
        .name(target)
        .args(args)
        .unwrap()
        .build()
        .unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    p
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, big_arg, n] = args.as_slice()
        && big_arg == "big"
    {
        let p = ended("big", &n.parse::<usize>().unwrap());
        show!("big exitcode", p.exitcode());
        show!(
            "big result",
            p.result::<Vec<u8>>().map(|r| r.map(|v| v.len()))
        );
        return;
    }
    let p = Process::builder("square")
        .args(&7u64)
        .unwrap()
        .build()
        .unwrap();
    show!("unstarted square result", p.result::<u64>());
    p.start().unwrap();
    p.join(None).unwrap();
    show!("square exitcode", p.exitcode());
    show!("square result", p.result::<u64>());
    show!("square result again", p.result::<u64>());
    show!("square result as String", p.result::<String>());

    let p = ended("greet", &"ada".to_string());
    show!("greet result", p.result::<(String, u32)>());
    let p = ended("unit", &());
    show!("unit result", p.result::<()>());
    let p = ended("exits", &());
    show!("exits exitcode", p.exitcode());
    show!("exits result", p.result::<u64>());
    let p = ended("panics", &());
    show!("panics exitcode", p.exitcode());
    show!("panics result", p.result::<u64>());

    let go = Event::new().unwrap();
    let p = Process::builder("waits")
        .args(&go)
        .unwrap()
        .build()
        .unwrap();
    p.start().unwrap();
    show!("waits result while running", p.result::<u32>());
    go.set().unwrap();
    p.join(None).unwrap();
    show!("waits result", p.result::<u32>());

    let p = Process::new("sleeps", &()).unwrap();
    p.start().unwrap();
    p.terminate().unwrap();
    p.join(None).unwrap();
    show!("terminated exitcode", p.exitcode());
    show!("terminated result", p.result::<u32>());

    p.close().unwrap();
    show!("closed result", p.result::<u32>());
}
