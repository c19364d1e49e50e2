//! CPython `test_sys_exit` and the exit-code rules of SPEC §3: return, exit(n), panic,
//! std::process::exit, a trap, and arguments that do not decode.

use programs::show;
use wasmproc_guest::{Process, targets};

fn returns() {}

fn exits(code: i32) {
    println!("exiting with {code}");
    wasmproc_guest::exit(code);
}

fn std_exit(code: i32) {
    std::process::exit(code);
}

fn panics() {
    panic!("deliberate panic");
}

fn traps() {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
}

fn typed(n: u32) {
    println!("typed got {n}");
}

targets![returns, exits, std_exit, panics, traps, typed];

fn run(p: Process) {
    p.start().unwrap();
    p.join(None).unwrap();
    println!(
        "{} exitcode: {:?}",
        p.name().unwrap(),
        p.exitcode().unwrap()
    );
}

fn main() {
    run(Process::builder("returns").name("returns").build().unwrap());
    for code in [0, 1, 3, 255, 256, 300, -1] {
        run(Process::builder("exits")
            .name(&format!("exit({code})"))
            .args(&code)
            .unwrap()
            .build()
            .unwrap());
    }
    run(Process::builder("std_exit")
        .name("std_exit(7)")
        .args(&7)
        .unwrap()
        .build()
        .unwrap());
    run(Process::builder("panics").name("panics").build().unwrap());
    run(Process::builder("traps").name("traps").build().unwrap());
    run(Process::builder("typed")
        .name("typed-ok")
        .args(&42u32)
        .unwrap()
        .build()
        .unwrap());
    run(Process::builder("typed")
        .name("typed-bad")
        .raw_args(vec![])
        .build()
        .unwrap());
    show!("unknown target", Process::new("nope", &()));
}
