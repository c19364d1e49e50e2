//! CPython `_TestQueue.test_task_done` and `_TestSimpleQueue` (Lib/test/_test_multiprocessing.py),
//! in our words, plus what a JoinableQueue does when a consumer ends without `task_done`.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Event, JoinableQueue, Process, Queue, SimpleQueue, targets};

const SHORT: Duration = Duration::from_millis(100);

/// Takes items until `None`, marking each done after a short pause.
fn worker((q, seen): (JoinableQueue<Option<u32>>, Queue<u32>)) {
    while let Some(n) = q.get().unwrap() {
        std::thread::sleep(Duration::from_millis(10));
        seen.put(&n).unwrap();
        q.task_done().unwrap();
    }
}

/// Takes one item, says so and never marks it done.
fn taker((q, took): (JoinableQueue<u32>, Event)) {
    q.get().unwrap();
    took.set().unwrap();
    sleep_forever();
}

/// Puts into a SimpleQueue once the parent has checked that it is empty.
fn simple_child((q, go): (SimpleQueue<String>, Event)) {
    go.wait(None).unwrap();
    q.put(&"from the child".to_string()).unwrap();
}

targets![worker, taker, simple_child];

fn main() {
    println!("-- JoinableQueue: 4 workers, 10 tasks");
    let q = JoinableQueue::<Option<u32>>::new().unwrap();
    let seen = Queue::<u32>::new().unwrap();
    let workers: Vec<Process> = (0..4)
        .map(|_| Process::new("worker", &(q.clone(), seen.clone())).unwrap())
        .collect();
    for w in &workers {
        w.start().unwrap();
    }
    for n in 0..10 {
        q.put(&Some(n)).unwrap();
    }
    show!("join", q.join());
    let mut done: Vec<u32> = (0..10).map(|_| seen.get().unwrap()).collect();
    done.sort_unstable();
    println!("done before join returned: {done:?}");
    show!(
        "join again (nothing unfinished)",
        q.join_timeout(Duration::ZERO)
    );
    for _ in &workers {
        q.put(&None).unwrap();
    }
    for w in &workers {
        w.join(None).unwrap();
        show!("worker exitcode", w.exitcode());
    }
    // The Nones were taken but never marked done.
    show!("join with 4 unfinished", q.join_timeout(SHORT));
    for _ in 0..4 {
        q.task_done().unwrap();
    }
    show!("join after 4 task_done", q.join_timeout(Duration::ZERO));
    show!("task_done too many", q.task_done());

    println!("-- JoinableQueue: counts and bounds");
    let b = JoinableQueue::<u32>::bounded(1).unwrap();
    show!("put", b.put(&1));
    show!("put_nowait on a full queue", b.put_nowait(&2));
    show!("join (1 unfinished)", b.join_timeout(SHORT));
    show!("get", b.get());
    show!("join (taken, not done)", b.join_timeout(Duration::ZERO));
    show!("task_done", b.task_done());
    show!("join", b.join_timeout(Duration::ZERO));
    show!("task_done too many", b.task_done());
    let as_queue: &Queue<u32> = &b;
    show!("qsize through Queue", as_queue.qsize());

    println!("-- JoinableQueue: a consumer killed before task_done");
    let k = JoinableQueue::<u32>::new().unwrap();
    let took = Event::new().unwrap();
    let p = Process::new("taker", &(k.clone(), took.clone())).unwrap();
    p.start().unwrap();
    k.put(&7).unwrap();
    show!("taker took it", took.wait(Duration::from_secs(30)));
    p.kill().unwrap();
    p.join(None).unwrap();
    show!("taker exitcode", p.exitcode());
    show!("join (the task stays unfinished)", k.join_timeout(SHORT));
    show!("task_done for it", k.task_done());
    show!("join", k.join_timeout(Duration::ZERO));

    println!("-- SimpleQueue");
    let s = SimpleQueue::<String>::new().unwrap();
    let go = Event::new().unwrap();
    let c = Process::new("simple_child", &(s.clone(), go.clone())).unwrap();
    c.start().unwrap();
    show!("empty", s.empty());
    go.set().unwrap();
    show!("get", s.get());
    show!("empty", s.empty());
    show!("put", s.put(&"mine".to_string()));
    show!("empty", s.empty());
    show!("get", s.get());
    c.join(None).unwrap();
    show!("child exitcode", c.exitcode());
    s.close();
    show!("get after close", s.get());
    show!("put after close", s.put(&"late".to_string()));
}
