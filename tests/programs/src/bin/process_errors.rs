//! Bad guest input (SPEC §4): unknown targets, unknown handles, another parent's child and
//! guessed handles give error values and no effect.

use programs::{show, sleep_forever};
use wasmproc_guest::{Process, Sentinel, targets, wait};

fn sleeper() {
    sleep_forever();
}

/// Gets a sibling's handle and tries everything on it, then guesses handles.
fn intruder(sibling: u64) {
    let s = Process::from_handle(sibling);
    show!("intruder start", s.start());
    show!("intruder join", s.join(None));
    show!("intruder is_alive", s.is_alive());
    show!("intruder exitcode", s.exitcode());
    show!("intruder terminate", s.terminate());
    show!("intruder kill", s.kill());
    show!("intruder close", s.close());
    show!("intruder name", s.name());
    show!("intruder wait", wait(&[Sentinel::from_raw(sibling)], None));
    std::mem::forget(s);
    let mut effects = 0;
    for h in 1..=256u64 {
        let p = Process::from_handle(h);
        if p.terminate().is_ok() || p.kill().is_ok() {
            effects += 1;
        }
        std::mem::forget(p);
    }
    println!("intruder guessed handles with effect: {effects}");
}

targets![sleeper, intruder];

fn main() {
    show!("unknown target", Process::new("no_such_target", &()));
    show!(
        "name with NUL",
        Process::builder("sleeper").name("a\0b").build()
    );
    let ghost = Process::from_handle(999_999);
    show!("unknown handle start", ghost.start());
    show!("unknown handle join", ghost.join(None));
    show!("unknown handle is_alive", ghost.is_alive());
    show!("unknown handle terminate", ghost.terminate());
    show!("unknown handle kill", ghost.kill());
    show!("unknown handle close", ghost.close());
    show!("unknown handle set_daemon", ghost.set_daemon(true));
    show!("unknown handle sentinel", ghost.sentinel());
    drop(ghost);

    let victim = Process::new("sleeper", &()).unwrap();
    victim.start().unwrap();
    let intruder = Process::new("intruder", &victim.handle()).unwrap();
    intruder.start().unwrap();
    intruder.join(None).unwrap();
    show!("intruder exitcode", intruder.exitcode());
    show!("victim still alive", victim.is_alive());
    victim.terminate().unwrap();
    victim.join(None).unwrap();
    show!("victim exitcode", victim.exitcode());
}
