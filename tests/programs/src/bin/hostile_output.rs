//! A process that writes without end: the output limit (on captured output) ends it; a
//! sibling's output is kept whole.

use wasmproc_guest::{Process, targets};

fn flood() {
    let line = "x".repeat(99);
    loop {
        println!("{line}");
    }
}

fn sibling() {
    println!("sibling done");
}

targets![flood, sibling];

fn main() {
    let f = Process::new("flood", &()).unwrap();
    let s = Process::new("sibling", &()).unwrap();
    f.start().unwrap();
    s.start().unwrap();
    f.join(None).unwrap();
    s.join(None).unwrap();
    println!("flood exitcode: {:?}", f.exitcode().unwrap());
    println!("sibling exitcode: {:?}", s.exitcode().unwrap());
}
