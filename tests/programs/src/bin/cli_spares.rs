//! Starts one child per line on its stdin and joins it: `self` runs this program's `noop`,
//! `other` runs the allowed program `other`'s `greet`. Prints `child PID exitcode CODE`
//! for each. With the native backend, the test in between kills the fork server's spares,
//! or makes the spares (forked before `other` was loaded) run a program they lack.

use std::io::BufRead;
use wasmproc_guest::{Process, targets};

fn noop() {}

targets![noop];

fn main() {
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let p = match line.trim() {
            "self" => Process::new("noop", &()).unwrap(),
            "other" => Process::builder("greet")
                .program("other")
                .args(&"spares".to_string())
                .unwrap()
                .build()
                .unwrap(),
            what => panic!("unknown command {what:?}"),
        };
        p.start().unwrap();
        p.join(None).unwrap();
        println!(
            "child {} exitcode {:?}",
            p.pid().unwrap().unwrap(),
            p.exitcode().unwrap()
        );
    }
}
