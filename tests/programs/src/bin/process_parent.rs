//! CPython `test_parent_process`, in our words: a grandchild sees its parent alive, then
//! (after the parent is terminated) not alive; `join` on the parent returns when it ends.

use std::time::Duration;
use wasmproc_guest::{Process, parent_process, targets};

fn child() {
    Process::new("grandchild", &()).unwrap().start().unwrap();
    programs::sleep_forever();
}

fn grandchild() {
    let parent = parent_process().unwrap();
    println!(
        "parent {} alive: {}",
        parent.name().unwrap(),
        parent.is_alive().unwrap()
    );
    parent.join(Duration::from_secs(30)).unwrap();
    println!(
        "parent {} alive: {}",
        parent.name().unwrap(),
        parent.is_alive().unwrap()
    );
}

targets![child, grandchild];

fn main() {
    let p = Process::new("child", &()).unwrap();
    p.start().unwrap();
    // Give the grandchild time to start and look at its parent.
    std::thread::sleep(Duration::from_millis(1000));
    p.terminate().unwrap();
    p.join(None).unwrap();
    println!("child exitcode: {:?}", p.exitcode().unwrap());
    // Give the orphaned grandchild time to notice; the run then ends.
    std::thread::sleep(Duration::from_millis(1000));
}
