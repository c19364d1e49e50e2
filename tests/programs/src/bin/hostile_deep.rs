//! Deep spawn recursion: each process starts one child one level deeper, until the depth
//! limit refuses; every level reports and exits cleanly.

use wasmproc_guest::{Process, targets};

fn level(depth: u32) {
    let p = Process::new("level", &(depth + 1)).unwrap();
    match p.start() {
        Ok(()) => {
            p.join(None).unwrap();
            println!("depth {depth}: child exitcode {:?}", p.exitcode().unwrap());
        }
        Err(e) => println!("depth {depth}: refused: {}", e.message()),
    }
}

targets![level];

fn main() {
    level(0);
}
