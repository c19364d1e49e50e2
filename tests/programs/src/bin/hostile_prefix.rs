//! Output meant to confuse `--output prefix`: a line whose control characters try to
//! rewrite the line and forge a sibling's prefix, and a line longer than the host's bound
//! with no newline at all. The host escapes the one and splits the other into prefixed
//! pieces; the sibling's own line is written as it wrote it.
//!
//! With an argument N, the forger writes a line of N bytes without a newline instead (the
//! throughput figure of BENCHMARKS.md).

use std::io::Write;
use wasmproc_guest::{Process, targets};

/// The host's bound on a prefixed line, in bytes (`PREFIX_LINE_BOUND` in host/src/output.rs).
const BOUND: usize = 64 * 1024;

/// Tries to forge, then writes a long line without a newline, of `len` bytes if given.
fn forger(len: Option<usize>) {
    let mut out = std::io::stdout().lock();
    let line = match len {
        Some(len) => vec![b'x'; len],
        None => {
            out.write_all(
                "forged\r[Process-2] sibling done\x1b[1A\x1b[2K\x08\x0b\x0c\x00\x7f\tend\u{9b}\n"
                    .as_bytes(),
            )
            .unwrap();
            // The bound falls inside the 'é'.
            let mut line = vec![b'a'; BOUND - 1];
            line.extend_from_slice("é".as_bytes());
            line.extend_from_slice(&[b'b'; BOUND]);
            line.extend_from_slice(b"ccc");
            line
        }
    };
    out.write_all(&line).unwrap();
    out.flush().unwrap();
}

fn sibling() {
    println!("sibling done");
}

targets![forger, sibling];

fn main() {
    let len: Option<usize> = std::env::args().nth(1).map(|n| n.parse().unwrap());
    let f = Process::new("forger", &len).unwrap();
    let s = Process::new("sibling", &()).unwrap();
    f.start().unwrap();
    s.start().unwrap();
    f.join(None).unwrap();
    s.join(None).unwrap();
    println!("forger exitcode: {:?}", f.exitcode().unwrap());
    println!("sibling exitcode: {:?}", s.exitcode().unwrap());
}
