//! A second program, which `programs_main` starts children of (the host allows it under the
//! name `other`). Its own main only says what it is.

use wasmproc_guest::{Queue, current_process, parent_process, targets};

/// Greets `who`, saying which process it is and who its parent is.
fn greet(who: String) {
    let parent = parent_process().map(|p| p.name().unwrap_or_default());
    println!(
        "other program: hello {who}, I am {}, my parent is {parent:?}",
        current_process().name().unwrap_or_default()
    );
}

/// Answers on the queue it was given.
fn reply(q: Queue<String>) {
    q.put(&"a reply from the other program".to_string())
        .unwrap();
}

targets![greet, reply];

fn main() {
    println!("programs_other: a program whose targets another program runs");
}
