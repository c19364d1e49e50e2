//! CPython `test_daemon_argument` and the daemon rules of SPEC §3: the flag's default and
//! inheritance, settable only before start, and no children for daemonic processes.

use programs::{show, sleep_forever};
use wasmproc_guest::{Process, current_process, targets};

fn noop() {}

fn daemonic_parent() {
    show!("in daemon: current daemon", current_process().daemon());
    let p = Process::new("noop", &()).unwrap();
    show!("in daemon: child daemon inherited", p.daemon());
    show!("in daemon: start child", p.start());
}

fn sleeper() {
    sleep_forever();
}

targets![noop, daemonic_parent, sleeper];

fn main() {
    let p = Process::new("noop", &()).unwrap();
    show!("default daemon", p.daemon());
    show!("set_daemon before start", p.set_daemon(true));
    show!("daemon after set", p.daemon());
    let q = Process::builder("noop").daemon(true).build().unwrap();
    show!("builder daemon", q.daemon());
    let r = Process::builder("sleeper").build().unwrap();
    r.start().unwrap();
    show!("set_daemon after start", r.set_daemon(true));
    r.kill().unwrap();
    r.join(None).unwrap();
    let d = Process::builder("daemonic_parent")
        .daemon(true)
        .build()
        .unwrap();
    d.start().unwrap();
    d.join(None).unwrap();
    show!("daemonic parent exitcode", d.exitcode());
}
