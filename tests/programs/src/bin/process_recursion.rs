//! CPython `test_recursion`, in our words: processes start processes; names follow the
//! identity `Process-N:M`.

use wasmproc_guest::{Process, current_process, targets};

fn node(depth: u32) {
    println!("{}", current_process().name().unwrap());
    if depth < 2 {
        for _ in 0..2 {
            let p = Process::new("node", &(depth + 1)).unwrap();
            p.start().unwrap();
            p.join(None).unwrap();
            assert_eq!(p.exitcode().unwrap(), Some(0));
        }
    }
}

targets![node];

fn main() {
    node(0);
}
