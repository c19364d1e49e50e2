//! CPython `test_close`, in our words: close fails while the process runs; afterwards every
//! call fails with "process object is closed".

use programs::{show, sleep_forever};
use wasmproc_guest::{Process, targets, wait};

fn sleeper() {
    sleep_forever();
}

targets![sleeper];

fn main() {
    let p = Process::new("sleeper", &()).unwrap();
    p.start().unwrap();
    let s = p.sentinel().unwrap();
    show!("close while running", p.close());
    show!("is_alive", p.is_alive());
    p.terminate().unwrap();
    p.join(None).unwrap();
    show!("close", p.close());
    show!("close again", p.close());
    show!("start", p.start());
    show!("join", p.join(None));
    show!("is_alive", p.is_alive());
    show!("exitcode", p.exitcode());
    show!("pid", p.pid());
    show!("name", p.name());
    show!("set_name", p.set_name("x"));
    show!("daemon", p.daemon());
    show!("set_daemon", p.set_daemon(true));
    show!("terminate", p.terminate());
    show!("kill", p.kill());
    show!("sentinel", p.sentinel());
    show!("wait on its sentinel", wait(&[s], None).map(|r| r.len()));
    let unstarted = Process::new("sleeper", &()).unwrap();
    show!("close unstarted", unstarted.close());
    show!("start after close", unstarted.start());
}
