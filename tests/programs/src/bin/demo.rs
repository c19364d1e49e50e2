//! The demo: the main process starts five children that end in five different ways, joins
//! them and prints one line per child with its name, pid and exit code.

use std::time::Duration;
use wasmproc_guest::{Process, targets};

fn returns() {}

fn exits(code: i32) {
    wasmproc_guest::exit(code);
}

fn panics() {
    panic!("this child panics on purpose");
}

fn busy_loop() {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn sleeps() {
    std::thread::sleep(Duration::from_secs(3600));
}

targets![returns, exits, panics, busy_loop, sleeps];

fn main() -> Result<(), wasmproc_guest::Error> {
    let children = [
        Process::new("returns", &())?,
        Process::new("exits", &3)?,
        Process::new("panics", &())?,
        Process::new("busy_loop", &())?,
        Process::new("sleeps", &())?,
    ];
    for p in &children {
        p.start()?;
    }
    // Give the busy loop and the sleeper time to get going, then stop them.
    children[0].join(None)?;
    children[1].join(None)?;
    children[2].join(None)?;
    children[3].join(Duration::from_millis(100))?;
    children[3].terminate()?;
    children[4].join(Duration::from_millis(100))?;
    children[4].kill()?;
    for p in &children {
        p.join(None)?;
        println!(
            "{:<10} pid={:<3} exitcode={}",
            p.name()?,
            p.pid()?.unwrap_or(0),
            p.exitcode()?.map_or("None".to_string(), |c| c.to_string())
        );
    }
    Ok(())
}
