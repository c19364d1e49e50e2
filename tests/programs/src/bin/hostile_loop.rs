//! Infinite loops under a wall-time or CPU-time limit (the first argument names the test's
//! expectation only); a sibling finishes its work.

use wasmproc_guest::{Process, targets};

fn spin() {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

fn sibling() {
    std::thread::sleep(std::time::Duration::from_millis(20));
    println!("sibling done");
}

/// Prints `tick 1` to `tick n`, 30 ms apart (for a host that reads its output as it comes).
fn ticker(n: u32) {
    for i in 1..=n {
        println!("tick {i}");
        std::thread::sleep(std::time::Duration::from_millis(30));
    }
}

targets![spin, sibling, ticker];

fn main() {
    let spinner = Process::new("spin", &()).unwrap();
    let s = Process::new("sibling", &()).unwrap();
    spinner.start().unwrap();
    s.start().unwrap();
    spinner.join(None).unwrap();
    s.join(None).unwrap();
    println!("spin exitcode: {:?}", spinner.exitcode().unwrap());
    println!("sibling exitcode: {:?}", s.exitcode().unwrap());
}
