//! CPython `test_current` and `test_parent_process_attributes`, in our words: what a
//! process knows about itself and its parent.

use programs::show;
use wasmproc_guest::{Process, authkey, cpu_count, current_process, parent_process, targets};

fn child(parent_key: Vec<u8>) {
    let me = current_process();
    show!("child name", me.name());
    show!("child daemon", me.daemon());
    show!("child is_alive", me.is_alive());
    println!("child pid: {}", me.pid().unwrap().unwrap());
    let parent = parent_process().expect("a child has a parent");
    show!("parent name", parent.name());
    println!("parent pid: {}", parent.pid().unwrap().unwrap());
    show!("parent is_alive", parent.is_alive());
    show!("parent exitcode", parent.exitcode());
    show!("parent daemon", parent.daemon());
    show!("terminate parent", parent.terminate());
    show!("start parent", parent.start());
    println!(
        "same authkey: {}",
        authkey().as_bytes() == parent_key.as_slice()
    );
}

targets![child];

fn main() {
    let me = current_process();
    show!("name", me.name());
    println!("pid: {}", me.pid().unwrap().unwrap());
    show!("daemon", me.daemon());
    show!("is_alive", me.is_alive());
    show!("exitcode", me.exitcode());
    println!("parent_process is none: {}", parent_process().is_none());
    println!("authkey length: {}", authkey().as_bytes().len());
    println!("authkey debug: {:?}", authkey());
    println!("cpu_count positive: {}", cpu_count() > 0);
    show!("join self", me.join(None));
    show!("terminate self", me.terminate());
    show!("kill self", me.kill());
    show!("start self", me.start());
    show!("close self", me.close());
    show!("set_daemon self", me.set_daemon(true));
    show!("sentinel self", me.sentinel());
    show!("rename self", me.set_name("Boss"));
    show!("renamed", me.name());
    let p = Process::new("child", &authkey().as_bytes().to_vec()).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    println!("child started by Boss: {}", p.name().unwrap());
    println!("child pid seen by parent: {}", p.pid().unwrap().unwrap());
    show!("child exitcode", p.exitcode());
}
