//! CPython's "stdin is /dev/null" check, in our words: a child reading stdin gets end of
//! file at once, whatever the main process's stdin holds.

use std::io::Read;
use wasmproc_guest::{Process, targets};

fn reader() {
    let mut buf = Vec::new();
    let n = std::io::stdin().read_to_end(&mut buf).unwrap();
    println!("child read {n} bytes");
}

targets![reader];

fn main() {
    let mut buf = Vec::new();
    let n = std::io::stdin().read_to_end(&mut buf).unwrap();
    println!("main read {n} bytes");
    let p = Process::new("reader", &()).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    println!("child exitcode: {:?}", p.exitcode().unwrap());
}
