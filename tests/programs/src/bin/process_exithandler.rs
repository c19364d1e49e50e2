//! CPython's exit handler (`util._exit_function`), in our words: when a process's main ends
//! — by returning, by exit(n) or by a panic — its daemonic children are terminated and the
//! others joined first, and its own exit code stays what it was.
//! The first argument chooses how main ends: `return`, `exit` or `panic`.

use programs::sleep_forever;
use std::time::Duration;
use wasmproc_guest::{Process, targets};

fn slow() {
    std::thread::sleep(Duration::from_millis(200));
    println!("slow child finished");
}

fn forever() {
    sleep_forever();
}

targets![slow, forever];

fn main() {
    let how = std::env::args()
        .nth(1)
        .expect("usage: process_exithandler return|exit|panic");
    Process::builder("forever")
        .daemon(true)
        .build()
        .unwrap()
        .start()
        .unwrap();
    Process::builder("slow").build().unwrap().start().unwrap();
    println!("main ends by {how}");
    match how.as_str() {
        "return" => {}
        "exit" => wasmproc_guest::exit(5),
        "panic" => panic!("main panics"),
        other => panic!("unknown mode {other}"),
    }
}
