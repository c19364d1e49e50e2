//! A spawn bomb: every process starts children until the host refuses; the refusal is an
//! error value naming the limit, and the run ends cleanly. With the argument `hold`, main
//! then prints `holding` and waits forever instead (for a test that kills the host).

use wasmproc_guest::{ErrorKind, Process, current_process, targets};

fn bomb(depth: u32) {
    let mut kids = Vec::new();
    loop {
        let p = match Process::new("bomb", &(depth + 1)) {
            Ok(p) => p,
            Err(e) => {
                println!(
                    "{}: create refused: {:?}",
                    current_process().name().unwrap(),
                    e.kind()
                );
                break;
            }
        };
        match p.start() {
            Ok(()) => kids.push(p),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
                if depth == 0 {
                    println!(
                        "main refused after {} children: {}",
                        kids.len(),
                        e.message()
                    );
                    if std::env::args().any(|a| a == "hold") {
                        println!("holding");
                        programs::sleep_forever();
                    }
                }
                break;
            }
        }
    }
    // Every process but main stays alive (holding its place) until it is killed.
    if depth > 0 {
        programs::sleep_forever();
    }
    for k in &kids {
        let _ = k.kill();
        let _ = k.join(None);
    }
}

targets![bomb];

fn main() {
    bomb(0);
    println!("main survived");
}
