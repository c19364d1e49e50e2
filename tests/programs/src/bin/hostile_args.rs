//! Oversized start arguments: refused at create when over the args limit; a process that
//! tries to build 1 GiB of arguments meets the memory limit first.

use programs::show;
use wasmproc_guest::{Process, targets};

fn take(bytes: Vec<u8>) {
    println!("took {} bytes", bytes.len());
}

fn huge() {
    let p = Process::builder("take")
        .raw_args(vec![7u8; 1 << 30])
        .build();
    show!("1 GiB create", p.map(|_| ()));
}

fn sibling() {
    println!("sibling done");
}

targets![take, huge, sibling];

fn main() {
    show!(
        "2 MiB create",
        Process::builder("take")
            .raw_args(vec![0u8; 2 << 20])
            .build()
            .map(|_| ())
    );
    let ok = Process::new("take", &vec![1u8; 1000]).unwrap();
    ok.start().unwrap();
    ok.join(None).unwrap();
    show!("1000 bytes exitcode", ok.exitcode());
    let h = Process::new("huge", &()).unwrap();
    let s = Process::new("sibling", &()).unwrap();
    h.start().unwrap();
    s.start().unwrap();
    h.join(None).unwrap();
    s.join(None).unwrap();
    show!("huge exitcode", h.exitcode());
    show!("sibling exitcode", s.exitcode());
}
