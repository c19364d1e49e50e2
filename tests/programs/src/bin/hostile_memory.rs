//! A memory bomb next to a sibling doing real work: the bomb ends with the limit's exit code
//! and a one-line message; the sibling finishes unharmed.

use wasmproc_guest::{Process, targets};

fn bomb() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn sibling() {
    let sum: u64 = (1..=1_000_000u64).sum();
    println!("sibling sum: {sum}");
}

targets![bomb, sibling];

fn main() {
    let s = Process::new("sibling", &()).unwrap();
    let b = Process::new("bomb", &()).unwrap();
    b.start().unwrap();
    s.start().unwrap();
    b.join(None).unwrap();
    s.join(None).unwrap();
    println!("bomb exitcode: {:?}", b.exitcode().unwrap());
    println!("sibling exitcode: {:?}", s.exitcode().unwrap());
}
