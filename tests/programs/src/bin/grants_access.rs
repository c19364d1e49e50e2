//! What a process can reach: a file under /data, writing under /out, an environment
//! variable. The host grants each or not; a child reports the same as main.

use wasmproc_guest::{Process, current_process, targets};

fn report() {
    let who = current_process().name().unwrap();
    match std::fs::read_to_string("/data/secret.txt") {
        Ok(text) => println!("{who} read: {}", text.trim()),
        Err(_) => println!("{who} read: denied"),
    }
    match std::fs::write(format!("/out/{who}.txt"), who.as_bytes()) {
        Ok(()) => println!("{who} write: ok"),
        Err(_) => println!("{who} write: denied"),
    }
    match std::env::var("SECRET") {
        Ok(v) => println!("{who} env: {v}"),
        Err(_) => println!("{who} env: none"),
    }
}

targets![report];

fn main() {
    report();
    let p = Process::new("report", &()).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
}
