//! Queues, pipes, events, locks and semaphores: the cases of CPython's `_TestQueue`,
//! `_TestConnection`, `_TestEvent`, `_TestLock`, `_TestSemaphore` and `TestWait`
//! (Lib/test/_test_multiprocessing.py), ported in our own words, and wasmproc's own
//! guarantees (nothing put is lost, handles cross only by being passed, a lock whose owner
//! died is handed on with `OwnerDied`). Each guest program in
//! `tests/programs/src/bin/sync_*.rs` prints what it observes; each test here asserts that
//! output exactly, under every backend.

use crate::harness::{Outcome, backend_tests, lines, run};
use wasmproc::ExitStatus;
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_sync!(assert_test_exists);

const EMPTY: &str = "error Empty: the queue is empty";
const FULL: &str = "error Full: the queue is full";
const EOF: &str =
    "error Eof: the other end of the connection is closed and every message has been received";
const BROKEN: &str = "error BrokenPipe: the other end of the connection is closed";
const QUEUE_CLOSED: &str = "error Closed: Queue is closed";
const HANDLE_CLOSED: &str = "error Closed: handle is closed";
const TOO_MANY: &str = "error InvalidState: semaphore or lock released too many times";
const UNACQUIRED: &str = "error InvalidState: cannot release un-acquired lock";

/// Asserts that the run succeeded and that no process wrote to stderr, except those named
/// in `allowed`.
fn assert_clean(out: &Outcome, backend: wasmproc::BackendKind, allowed: &[&str]) {
    assert_eq!(
        out.status,
        ExitStatus::SUCCESS,
        "{backend:?}: stderr {:?}",
        out.stderr()
    );
    for name in out.names() {
        if !allowed.contains(&name.as_str()) {
            assert_eq!(out.stderr_of(&name), "", "{backend:?} {name}");
        }
    }
}

/// Asserts that `stderr` is the report of a panic with `message` in `file`.
fn assert_panic_report(stderr: &str, process: &str, file: &str, message: &str) {
    let report: Vec<&str> = stderr.lines().collect();
    assert_eq!(report.len(), 3, "{stderr}");
    assert_eq!(report[0], format!("Process {process}:"));
    assert!(
        report[1].starts_with(&format!("panicked at src/bin/{file}:")),
        "{stderr}"
    );
    assert_eq!(report[2], message);
}

backend_tests! {
    fn sync_queue(backend) {
        let out = run(backend, SYNC_QUEUE, &[]);
        assert_clean(&out, backend, &[]);
        let put = [
            "-- put",
            "empty: true",
            "full: false",
            "put 1: ()",
            "put 2: ()",
            "put_timeout 3: ()",
            "put_nowait 4: ()",
            "put_nowait 5: ()",
            "put_nowait 6: ()",
            "empty: false",
            "full: true",
            "qsize: 6",
        ];
        let mut expected: Vec<String> = put.iter().map(|s| s.to_string()).collect();
        expected.extend([
            format!("put_nowait 7: {FULL}"),
            format!("put_timeout 7 (0.1s): {FULL}"),
            format!("put_timeout 7 (0): {FULL}"),
        ]);
        let rest = [
            "qsize: 6".to_string(),
            "wait for the child: true".into(),
            "empty: true".into(),
            "full: false".into(),
            "child exitcode: Some(0)".into(),
            "-- get".into(),
            "empty: true".into(),
            format!("get_nowait on empty: {EMPTY}"),
            "wait for the child: true".into(),
            "empty: false".into(),
            "full (unbounded): false".into(),
            "get_nowait: 1".into(),
            "get: 2".into(),
            "get_timeout: 3".into(),
            "get: 4".into(),
            "get: 5".into(),
            "empty: true".into(),
            format!("get_nowait: {EMPTY}"),
            format!("get_timeout (0.1s): {EMPTY}"),
            format!("get_timeout (0.3s): {EMPTY}"),
            format!("get_timeout (0): {EMPTY}"),
            "child exitcode: Some(0)".into(),
            "-- fork".into(),
            format!("got: {:?}", (0..20).collect::<Vec<i32>>()),
            format!("then get_nowait: {EMPTY}"),
            "child exitcode: Some(0)".into(),
            "-- qsize".into(),
            "qsize: 0".into(),
            "qsize: 1".into(),
            "qsize: 2".into(),
            "get: 1".into(),
            "qsize: 1".into(),
            "get: 5".into(),
            "qsize: 0".into(),
            "-- timeout".into(),
            format!("get_timeout (0.2s): {EMPTY}"),
            "waited at least 0.1s: true".into(),
            format!("put_timeout on full (0.2s): {FULL}"),
            "waited at least 0.1s: true".into(),
            "-- closed".into(),
            format!("put after close: {QUEUE_CLOSED}"),
            format!("put_nowait after close: {QUEUE_CLOSED}"),
            format!("get after close: {QUEUE_CLOSED}"),
            format!("get_nowait after close: {QUEUE_CLOSED}"),
            format!("get_timeout after close: {QUEUE_CLOSED}"),
            format!("qsize after close: {QUEUE_CLOSED}"),
            format!("empty after close: {QUEUE_CLOSED}"),
            format!("put_bytes after close: {QUEUE_CLOSED}"),
            format!("get_bytes after close: {QUEUE_CLOSED}"),
            format!("a clone's get after close: {QUEUE_CLOSED}"),
            "closing twice: ok".into(),
            format!("put on a closed unused queue: {QUEUE_CLOSED}"),
            "-- typed".into(),
            "record: Record { name: \"ünïcödé ✓\", tags: [\"a\", \"\", \"c\"], score: Some(-7), \
             shape: Circle { r: 2.5 }, raw: [0, 255, 10] }"
                .into(),
            "record: Record { name: \"\", tags: [], score: None, shape: Square(4294967295), \
             raw: [] }"
                .into(),
            "record: \"last\" tags[0].len()=1000 score=Some(-9223372036854775808) \
             shape=Nothing raw.len()=256"
                .into(),
            // Around the 16 bytes of the small-item fast path and the 46 kept inline.
            "bytes of length 0 round trip: true".into(),
            "bytes of length 3 round trip: true".into(),
            "bytes of length 8 round trip: true".into(),
            "bytes of length 15 round trip: true".into(),
            "bytes of length 16 round trip: true".into(),
            "bytes of length 17 round trip: true".into(),
            "bytes of length 46 round trip: true".into(),
            "bytes of length 47 round trip: true".into(),
            "bytes of length 65536 round trip: true".into(),
            "child exitcode: Some(0)".into(),
        ];
        expected.extend(rest);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        assert_eq!(
            out.stdout_of("Process-1"),
            "child got [1, 2, 3, 4, 5, 6]\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_queue_many(backend) {
        for mode in ["unbounded", "bounded"] {
            let out = run(backend, SYNC_QUEUE_MANY, &[mode]);
            assert_clean(&out, backend, &[]);
            assert_eq!(
                out.stdout(),
                lines(&[
                    "exitcodes: [Some(0), Some(0), Some(0), Some(0), Some(0), Some(0), Some(0)]",
                    "items received: 4000",
                    "distinct items: 4000",
                    "every item exactly once: true",
                    "queue left empty: true",
                ]),
                "{backend:?} {mode}"
            );
            for i in 0..3 {
                assert_eq!(
                    out.stdout_of(&format!("consumer-{i}")),
                    "fifo per producer: true\n",
                    "{backend:?} {mode}"
                );
            }
        }
    }
}

backend_tests! {
    fn sync_pipe(backend) {
        let out = run(backend, SYNC_PIPE, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- connection",
                "send typed: ()",
                "recv typed: (1, 2.25, None)",
                "send a string: ()",
                "recv a string: \"hello\"",
                "send_bytes: ()",
                "recv_bytes: \"hello world\"",
                "poll(0): false",
                "poll(0.1): false",
                "poll waited at least 0.05s: true",
                "poll after the echo was sent: true",
                "poll(None) with a message waiting: true",
                "recv_bytes: \"ping\"",
                "send_bytes 1 MiB: ()",
                "recv_bytes 1 MiB: length 1048576 equal true",
                "send 100000 numbers: ()",
                "recv them: true",
                "readable: true, writable: true",
                &format!("recv after the other end closed: {EOF}"),
                &format!("recv_bytes after the other end closed: {EOF}"),
                "poll(0) at end-of-file: true",
                "child exitcode: Some(0)",
                "-- duplex false",
                "writer send: ()",
                "reader recv: 1",
                "reader readable: true, writable: false",
                "writer readable: false, writable: true",
                "reader send: error InvalidState: connection is read-only",
                "reader send_bytes: error InvalidState: connection is read-only",
                "writer recv: error InvalidState: connection is write-only",
                "writer recv_bytes: error InvalidState: connection is write-only",
                "writer poll: error InvalidState: connection is write-only",
                "reader poll: false",
                "-- spawn close",
                "send_bytes: ()",
                "recv_bytes: \"hello\"",
                &format!("recv_bytes after the child quit: {EOF}"),
                "child exitcode: Some(0)",
                "-- closed",
                "closed before close: false",
                "closed after close: true",
                &format!("send: {HANDLE_CLOSED}"),
                &format!("send_bytes: {HANDLE_CLOSED}"),
                &format!("recv: {HANDLE_CLOSED}"),
                &format!("recv_bytes: {HANDLE_CLOSED}"),
                &format!("poll: {HANDLE_CLOSED}"),
                "closing twice: ok",
                &format!("the other end's send: {BROKEN}"),
                &format!("the other end's recv: {EOF}"),
                "the other end's poll: true",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_pipe_end(backend) {
        let out = run(backend, SYNC_PIPE_END, &[]);
        assert_clean(&out, backend, &[]);
        let ended = |target: &str, exitcode: i32, message: &str| {
            [
                format!("-- the other process ends: {target}"),
                format!("recv: {message:?}"),
                format!("recv at end-of-file: {EOF}"),
                format!("send to the ended process: {BROKEN}"),
                format!("child exitcode: Some({exitcode})"),
            ]
        };
        let mut expected: Vec<String> = [
            "-- the other process closes its end",
            "recv: \"one\"",
            "recv: \"two\"",
        ]
        .map(String::from)
        .to_vec();
        expected.extend([
            format!("recv at end-of-file: {EOF}"),
            format!("recv_bytes at end-of-file: {EOF}"),
            "poll(0) at end-of-file: true".into(),
            format!("send to the closed end: {BROKEN}"),
            format!("send_bytes to the closed end: {BROKEN}"),
            "the child is still alive: true".into(),
            "child exitcode: Some(0)".into(),
        ]);
        expected.extend(ended("send_then_return", 0, "bye"));
        expected.extend(ended("send_then_exit", 3, "exiting"));
        expected.extend([
            "-- the other process is killed".into(),
            "child ready: true".into(),
            "recv: \"holding\"".into(),
            "poll(0) while the child holds its end: false".into(),
            "send while the child holds its end: ()".into(),
            "child exitcode: Some(-9)".into(),
            format!("recv after the kill: {EOF}"),
            format!("send after the kill: {BROKEN}"),
            "-- one-way pipes".into(),
            "reader recv: \"bye\"".into(),
            format!("reader recv at end-of-file: {EOF}"),
            "child exitcode: Some(0)".into(),
            format!("writer send once the reader is gone: {BROKEN}"),
            "-- both ends in one process".into(),
            "recv: 1".into(),
            "recv: 2".into(),
            format!("recv at end-of-file: {EOF}"),
            format!("send: {BROKEN}"),
        ]);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        assert_eq!(
            out.stdout_of("Process-6"),
            "reader readable: true\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_event(backend) {
        let out = run(backend, SYNC_EVENT, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "is_set: false",
                "wait(0): false",
                "wait(0.1): false",
                "waited at least 0.05s: true",
                "set: ()",
                "is_set: true",
                "wait(None): true",
                "wait(0.1): true",
                "set again: ()",
                "is_set: true",
                "clear: ()",
                "is_set: false",
                "clear again: ()",
                "wait(None) for the child: true",
                "is_set: true",
                "child exitcode: Some(0)",
                "-- many waiters",
                &format!("nobody done before set: {EMPTY}"),
                "woken: [0, 1, 2]",
                "-- a child's wait times out",
                "child exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-5"),
            lines(&[
                "child wait(0.1): false",
                "child waited at least 0.05s: true",
                "child is_set: false",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_lock(backend) {
        let out = run(backend, SYNC_LOCK, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- lock",
                "acquire: true",
                "try_acquire: false",
                "acquire_timeout(0.1): false",
                "waited at least 0.05s: true",
                "release: ()",
                &format!("release again: {TOO_MANY}"),
                "try_acquire: true",
                "release: ()",
                "-- rlock",
                "acquire: true",
                "acquire: true",
                "try_acquire: true",
                "acquire_timeout(0.1): true",
                "release: ()",
                "release: ()",
                "release: ()",
                "release: ()",
                &format!("release once more: {UNACQUIRED}"),
                "-- lock context",
                "guard taken: true",
                "try_acquire while the guard lives: false",
                "try_acquire after the guard: true",
                "release: ()",
                "nested guards taken: true",
                &format!("rlock release after the guards: {UNACQUIRED}"),
                "-- lock held by a child",
                "child holds it: true",
                "try_acquire: false",
                "acquire_timeout(0.1): false",
                "acquire (waits for the child): true",
                "release: ()",
                "child exitcode: Some(0)",
                "-- a child releases the parent's Lock",
                "acquire: true",
                "try_acquire after the child released it: true",
                "release: ()",
                "-- a child cannot release the parent's RLock",
                "acquire: true",
                "release: ()",
                "-- RLock held twice by a child",
                "child holds it: true",
                "try_acquire: false",
                &format!("release of the child's RLock: {UNACQUIRED}"),
                "acquire (waits for the child): true",
                "release: ()",
                "child exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-1"),
            "child acquire: true\nchild release: ()\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-2"),
            "child release of the parent's Lock: ()\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-3"),
            lines(&[
                &format!("child release of the parent's RLock: {UNACQUIRED}"),
                "child try_acquire of the parent's RLock: false",
                "child acquire_timeout(0.1) of the parent's RLock: false",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-4"),
            lines(&[
                "child acquire: true",
                "child acquire again: true",
                "child release: ()",
                "child release: ()",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_semaphore(backend) {
        let out = run(backend, SYNC_SEMAPHORE, &[]);
        assert_clean(&out, backend, &[]);
        let two_units = [
            "get_value: 2",
            "acquire: true",
            "get_value: 1",
            "acquire: true",
            "get_value: 0",
            "try_acquire: false",
            "get_value: 0",
            "release: ()",
            "get_value: 1",
            "release: ()",
            "get_value: 2",
        ];
        let mut expected = vec!["-- semaphore"];
        expected.extend(two_units);
        expected.extend([
            "release: ()",
            "get_value: 3",
            "release: ()",
            "get_value: 4",
            "-- bounded semaphore",
        ]);
        expected.extend(two_units);
        let too_many = format!("release above the initial value: {TOO_MANY}");
        expected.extend([
            too_many.as_str(),
            "get_value: 2",
            "-- timeout",
            "try_acquire: false",
            "acquire_timeout(0): false",
            "acquire_timeout(0.1): false",
            "acquire_timeout(0.3): false",
            "waited at least 0.3s: true",
            "guard of a semaphore: true",
            "-- released by a child",
            "acquire: true",
            "acquire: true",
            "acquire: true",
            "get_value: 0",
            "child exitcode: Some(0)",
            "-- no owner",
            "child took a unit: true",
            "child exitcode: Some(-9)",
            "get_value after the kill: 0",
            "try_acquire after the kill: false",
            "release: ()",
            "try_acquire: true",
        ]);
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        assert_eq!(
            out.stdout_of("Process-2"),
            "child acquire: true\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_wait(backend) {
        let out = run(backend, SYNC_WAIT, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "wait(0), nothing ready: []",
                "wait(0.1), nothing ready: []",
                "wait after the sender was allowed: [\"pipe\"]",
                "recv: \"hello\"",
                "wait(0) after the sender ended (end-of-file): [\"pipe\"]",
                &format!("recv: {EOF}"),
                "wait after the putter ended: [\"pipe\", \"queue\"]",
                "get: 7",
                "wait(0) after the get: [\"pipe\"]",
                "wait after terminating the sleeper: [\"pipe\", \"sleeper\"]",
                "-- all ready at once, returned in the order given",
                "wait(None): [\"queue\", \"pipe b\", \"quick\", \"pipe a\"]",
                "wait(None), reversed: [\"pipe a\", \"quick\", \"pipe b\", \"queue\"]",
                "-- draining a pipe through wait",
                "ended with: Eof",
                "got: [0, 1, 2, 3, 4]",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_handles(backend) {
        let out = run(backend, SYNC_HANDLES, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- handles given as plain data",
                "probe exitcode: Some(0)",
                "the private queue is untouched: 0",
                "the private lock is free: true",
                "the private event is clear: false",
                "get: 1",
                "get: 2",
                "-- a closed object is no longer held",
                "queue-qsize after close: error InvalidArgument: <private queue> is not a queue \
                 of this process",
                "passing a closed queue to a child: error InvalidArgument: a closed Queue cannot \
                 be passed to a child process",
                "-- serialising an object into a queue item or a pipe message",
                "put a queue into a queue: ()",
                "send an event through a pipe: ()",
                "-- an object outlives its creator",
                "creator ready: true",
                "creator exitcode: Some(-15)",
                "reader done: true",
            ]),
            "{backend:?}"
        );
        let not = |what: &str, article: &str, name: &str| {
            format!("error InvalidArgument: <{name}> is not {article} {what} of this process")
        };
        assert_eq!(
            out.stdout_of("probe"),
            lines(&[
                &format!(
                    "queue-qsize of the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-put to the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-get from the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-try-put to the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-try-get from the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-try-put-small to the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                &format!(
                    "queue-try-get-small from the private queue: {}",
                    not("queue", "a", "private queue")
                ),
                "queue-try-put-small of 17 bytes: error InvalidArgument: a small item has at \
                 most 16 bytes, not 17",
                &format!(
                    "event-set of the private event: {}",
                    not("event", "an", "private event")
                ),
                &format!(
                    "lock-acquire of the private lock: {}",
                    not("lock", "a", "private lock")
                ),
                &format!(
                    "lock-release of the private lock: {}",
                    not("lock", "a", "private lock")
                ),
                &format!(
                    "conn-send on the private pipe: {}",
                    not("connection", "a", "private pipe")
                ),
                &format!(
                    "conn-recv on the private pipe: {}",
                    not("connection", "a", "private pipe")
                ),
                "queue-qsize of the shared queue: 0",
                &format!(
                    "the shared queue as a lock: {}",
                    not("lock", "a", "shared queue")
                ),
                &format!(
                    "the shared queue as an event: {}",
                    not("event", "an", "shared queue")
                ),
                &format!(
                    "the shared queue as a connection: {}",
                    not("connection", "a", "shared queue")
                ),
                &format!(
                    "wait on the private queue: {}",
                    not("connection or queue", "a", "private queue")
                ),
                "put on the shared queue: ()",
                "guessed handles usable: 1",
                "queue-try-get-small from its own empty queue: TakenItem::None",
                "queue-try-get from its own closed queue: error InvalidArgument: <own queue> is \
                 not a queue of this process",
                "queue-try-put-small to its own closed queue: error InvalidArgument: <own queue> \
                 is not a queue of this process",
                "grandchild exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("grandchild"),
            "grandchild put: ()\n",
            "{backend:?}"
        );
        assert_eq!(out.stdout_of("creator"), "", "{backend:?}");
        assert_eq!(
            out.stdout_of("reader"),
            lines(&[
                "creator alive: false",
                "get: \"a\"",
                "get: \"b\"",
                "get: \"c\"",
                &format!("get_nowait: {EMPTY}"),
                "put: ()",
                "get: \"d\"",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_lost(backend) {
        let out = run(backend, SYNC_LOST, &[]);
        assert_clean(&out, backend, &["Panic"]);
        let mut expected = Vec::new();
        for (end, code) in [("Return", 0), ("Exit", 3), ("Panic", 1), ("Sleep", -9)] {
            if end == "Sleep" {
                expected.push("the child has put everything: true".to_string());
            }
            expected.push(format!(
                "{end}: exitcode Some({code}), qsize 201, items 200 in order true, \
                 big item 100000, message \"last words before {end}\", then {EOF}"
            ));
            expected.push("  queue empty: true".into());
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        assert_panic_report(
            &out.stderr_of("Panic"),
            "Panic",
            "sync_lost.rs",
            "panic right after the puts",
        );
    }
}

backend_tests! {
    fn sync_ownerdied(backend) {
        let out = run(backend, SYNC_OWNERDIED, &[]);
        assert_clean(&out, backend, &["panicked"]);
        let died = |owner: &str| {
            format!(
                "error OwnerDied: the lock was acquired, but its previous owner {owner} ended \
                 while holding it"
            )
        };
        let mut expected = Vec::new();
        for (label, exitcode) in [
            ("terminated", Some(-15)),
            ("killed", Some(-9)),
            ("returned", Some(0)),
            ("panicked", Some(1)),
            ("dropped its handle", None),
        ] {
            expected.push(format!("-- Lock: owner {label}"));
            expected.push("owner holds it: true".into());
            if let Some(code) = exitcode {
                expected.push(format!("owner exitcode: Some({code})"));
            }
            expected.extend([
                format!("next acquire: {}", died(label)),
                "try_acquire (the next acquirer holds it): false".into(),
                "release: ()".into(),
                "third exitcode: Some(0)".into(),
                "acquire afterwards: true".into(),
                "release: ()".into(),
            ]);
        }
        expected.extend([
            "-- RLock: owner killed while holding it twice".into(),
            "owner holds it: true".into(),
            "owner exitcode: Some(-9)".into(),
            format!("next acquire: {}", died("Process-11")),
            "acquire again (recursion): true".into(),
            "release: ()".into(),
            "release: ()".into(),
            format!("release too many: {UNACQUIRED}"),
            "acquire afterwards: true".into(),
            "release: ()".into(),
            "-- Lock: a blocked acquirer sees the owner die".into(),
            "owner holds it: true".into(),
            "blocked is about to acquire: true".into(),
            "blocked exitcode: Some(0)".into(),
            "acquire afterwards: true".into(),
            "release: ()".into(),
        ]);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        for label in [
            "terminated",
            "killed",
            "returned",
            "panicked",
            "dropped its handle",
        ] {
            assert_eq!(
                out.stdout_of(&format!("third/{label}")),
                "third acquire: true\nthird release: ()\n",
                "{backend:?} {label}"
            );
        }
        assert_eq!(
            out.stdout_of("blocked"),
            lines(&[
                &format!("blocked acquire: {}", died("Process-12")),
                "blocked try_acquire while holding: false",
                "blocked release: ()",
            ]),
            "{backend:?}"
        );
        assert_panic_report(
            &out.stderr_of("panicked"),
            "panicked",
            "sync_ownerdied.rs",
            "panic while holding the lock",
        );
    }
}

backend_tests! {
    /// The README's example runs as written, under both backends.
    fn sync_readme(backend) {
        let out = run(backend, SYNC_README, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&["readme example: exit codes Some(0) Some(0)"]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn sync_batch(backend) {
        let out = crate::harness::run_limited(backend, &[("message", "1KiB")], SYNC_BATCH, &[]);
        // The panicking child's report is its own stderr.
        assert_clean(&out, backend, &["Process-5"]);
        let too_large = "an item of 2048 bytes exceeds limit message = 1024 bytes";
        // A native child is not told at once.
        let child: [String; 3] = match backend {
            wasmproc::BackendKind::Native => [
                "post of 2048 bytes: ()".into(),
                format!(
                    "the next call: error LimitExceeded: an earlier queue-post failed: \
                     {too_large}"
                ),
                "the call after: 0".into(),
            ],
            _ => [
                format!("post of 2048 bytes: error LimitExceeded: {too_large}"),
                "the next call: 0".into(),
                "the call after: 0".into(),
            ],
        };
        assert_eq!(
            out.stdout_of("Process-7"),
            lines(&child.each_ref().map(String::as_str)),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-2"),
            "child took [1, 2, 3, 4, 5] in one call\n",
            "{backend:?}"
        );
        let mut expected: Vec<String> = [
            "-- get_many",
            "get_many 3: [0, 1, 2]",
            "get_many 10: [3, 4]",
            "get_many on empty (0.1s): error Empty: the queue is empty",
            "get_many on empty (0): error Empty: the queue is empty",
            "get_many 0: error InvalidArgument: queue-get-many takes at least 1 item: max must \
             not be 0",
            "the item is still there: [9]",
            "get_many waits for the first: [7]",
            "get_many_bytes: [[1, 2]]",
            "-- put_many",
            "put_many_bytes of 3: 3",
            "then: [10, 11, 12]",
            "put_many_bytes of none: 0",
            "put_many_bytes of 3 on maxsize 2: 2",
            "put_many_bytes on the full queue: 0",
            "then: [1, 2]",
            "put_many_bytes of a first item too large: error LimitExceeded: an item of 2048 \
             bytes exceeds limit message = 1024 bytes",
            "put_many_bytes of a later item too large: 1",
            "then: [[1]]",
            "put_many_bytes of 5 to a waiting child: 5",
            "-- post",
            "posts and puts in order: [1, 2, 3]",
            "a child that posts 1000 and returns: exitcode Some(0), 1000 items, in order: true",
            "a child that posts 1000 and exits with 4: exitcode Some(4), 1000 items, in order: \
             true",
            "a child that posts 1000 and panics: exitcode Some(1), 1000 items, in order: true",
            "two queues: the second's first: 2",
            "two queues: the second's put: 4",
            "two queues: then the first has: [1, 3, 5]",
            "-- a post that fails",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expected.extend([
            format!("here: post of 2048 bytes: error LimitExceeded: {too_large}"),
            "here: the next call: 0".into(),
            "in a child: exitcode: Some(0)".into(),
        ]);
        assert_eq!(
            out.stdout_of("MainProcess"),
            lines(&expected.iter().map(String::as_str).collect::<Vec<_>>()),
            "{backend:?}"
        );
        assert!(
            out.stderr_of("Process-5").contains("after posting 1000"),
            "{backend:?}: {:?}",
            out.stderr_of("Process-5")
        );
    }
}

backend_tests! {
    /// JoinableQueue (`task_done`, `join`, "task_done() called too many times", a consumer
    /// killed before `task_done`) and SimpleQueue, as CPython's `_TestQueue.test_task_done`
    /// and `_TestSimpleQueue`.
    fn sync_joinable(backend) {
        let out = run(backend, SYNC_JOINABLE, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- JoinableQueue: 4 workers, 10 tasks",
                "join: ()",
                "done before join returned: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
                "join again (nothing unfinished): true",
                "worker exitcode: Some(0)",
                "worker exitcode: Some(0)",
                "worker exitcode: Some(0)",
                "worker exitcode: Some(0)",
                "join with 4 unfinished: false",
                "join after 4 task_done: true",
                "task_done too many: error InvalidState: task_done() called too many times",
                "-- JoinableQueue: counts and bounds",
                "put: ()",
                "put_nowait on a full queue: error Full: the queue is full",
                "join (1 unfinished): false",
                "get: 1",
                "join (taken, not done): false",
                "task_done: ()",
                "join: true",
                "task_done too many: error InvalidState: task_done() called too many times",
                "qsize through Queue: 0",
                "-- JoinableQueue: a consumer killed before task_done",
                "taker took it: true",
                "taker exitcode: Some(-9)",
                "join (the task stays unfinished): false",
                "task_done for it: ()",
                "join: true",
                "-- SimpleQueue",
                "empty: true",
                "get: \"from the child\"",
                "empty: true",
                "put: ()",
                "empty: false",
                "get: \"mine\"",
                "child exitcode: Some(0)",
                "get after close: error Closed: Queue is closed",
                "put after close: error Closed: Queue is closed",
            ])
        );
    }
}

backend_tests! {
    /// Condition: CPython's `_TestCondition` (notify, notify(n), notify_all, timeouts, wait_for,
    /// wait's result), the `RuntimeError` cases, a Condition over a Lock and over an RLock held
    /// twice, and a holder or a waiter that is killed.
    fn sync_condition(backend) {
        let out = run(backend, SYNC_CONDITION, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- notify",
                "before notify: 0 woke, more: false",
                "after notify(1): 1 woke, more: false",
                "after notify(1): 1 woke, more: false",
                "after notify(1): 1 woke, more: false",
                "sleepers' exitcodes: [Some(0), Some(0), Some(0)]",
                "-- notify_n",
                "after notify(2): 2 woke, more: false",
                "after notify(4) with 3 waiting: 3 woke, more: false",
                "after notify(4) with none waiting: 0 woke, more: false",
                "sleepers' exitcodes: [Some(0), Some(0), Some(0), Some(0), Some(0)]",
                "-- notify_all",
                "after notify_all: 4 woke, more: false",
                "sleepers' exitcodes: [Some(0), Some(0), Some(0), Some(0)]",
                "-- timeout",
                "wait(0.1): false",
                "waited at least 0.05s: true",
                "-- wait_for",
                "child's wait_for: true",
                "child exitcode: Some(0)",
                "-- wait_for timeout",
                "wait_for(false, 0.1): false",
                "waited at least 0.05s: true",
                "wait_for(true, 0): true",
                "-- wait result",
                "wait(60) notified: true",
                "wait(0.1) not notified: false",
                "-- without the lock",
                "wait: error InvalidState: cannot wait on un-acquired lock",
                "notify: error InvalidState: cannot notify on un-acquired lock",
                "notify_all: error InvalidState: cannot notify on un-acquired lock",
                "Lock: wait without it: error InvalidState: cannot wait on un-acquired lock",
                "Lock: wait(0.01): false",
                "Lock: notify: ()",
                "Lock: release: ()",
                "Lock: release again: error InvalidState: semaphore or lock released too many times",
                "RLock held twice: wait(0.01): false",
                "release: ()",
                "release: ()",
                "release a third time: error InvalidState: cannot release un-acquired lock",
                "-- the lock's holder is killed",
                "holder holds it: true",
                "acquire: error OwnerDied: the lock was acquired, but its previous owner holder ended while holding it",
                "notify (the caller holds it): ()",
                "release: ()",
                "-- a waiter is killed",
                "after notify(1): 1 woke, more: false",
                "sleepers' exitcodes: [Some(-9), Some(0)]",
            ])
        );
    }
}

backend_tests! {
    /// Barrier: CPython's `_TestBarrier` (passes and indexes, an action run before the
    /// release, abort, reset, timeouts, one party) and a killed party or action runner breaking it.
    fn sync_barrier(backend) {
        let out = run(backend, SYNC_BARRIER, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- 4 parties, 3 passes (the main process is one)",
                "parties: 4",
                "pass 0: indexes [0, 1, 2, 3]",
                "pass 1: indexes [0, 1, 2, 3]",
                "pass 2: indexes [0, 1, 2, 3]",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "n_waiting: 0, broken: false",
                "-- an action, run before any party is released",
                "pass 0: i rounds Some(1)",
                "pass 0: i rounds Some(1)",
                "pass 0: i rounds Some(1)",
                "pass 1: i rounds Some(2)",
                "pass 1: i rounds Some(2)",
                "pass 1: i rounds Some(2)",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "rounds: 2",
                "-- abort, then reset",
                "abort: ()",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "broken: true",
                "wait on a broken barrier: error BrokenBarrier: the barrier is broken",
                "reset: ()",
                "broken: false",
                "main's wait: 3",
                "parties: [\"0\", \"1\", \"2\"]",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "-- reset while parties wait",
                "reset: ()",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "waiting party: error BrokenBarrier: the barrier is broken",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "broken: false, n_waiting: 0",
                "main's wait after the reset: 3",
                "parties: [\"0\", \"1\", \"2\"]",
                "exitcodes: [Some(0), Some(0), Some(0)]",
                "-- a timeout breaks the barrier",
                "main's wait(0.1): error BrokenBarrier: the barrier is broken",
                "the other party: error BrokenBarrier: the barrier is broken",
                "exitcodes: [Some(0)]",
                "broken: true",
                "-- the default timeout",
                "wait(None): error BrokenBarrier: the barrier is broken",
                "broken: true",
                "-- one party",
                "wait: 0",
                "wait: 0",
                "-- a waiting party is killed",
                "the other party: error BrokenBarrier: the barrier is broken",
                "exitcodes: [Some(-9), Some(0)]",
                "broken: true",
                "-- the action's runner is killed",
                "parties: [\"error BrokenBarrier: the barrier is broken\", \"error BrokenBarrier: the barrier is broken\"]",
                "exitcodes: [Some(0), Some(0), Some(-9)]",
                "broken: true",
                "-- bad arguments",
                "Barrier::new(0): error InvalidArgument: parties must be >= 1",
            ])
        );
    }
}

backend_tests! {
    /// Value, RawValue, Array and RawArray: CPython's `_TestValue` and `_TestArray` (a child's
    /// writes seen by the parent, get_lock/get_obj, sizes), a counter four processes add to
    /// under the lock, and bad indexes and sizes.
    fn sync_shared(backend) {
        let out = run(backend, SYNC_SHARED, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- Value",
                "before: 4343 3.625 -232 8589934592 'x'",
                "set_values exitcode: Some(0)",
                "after: 24234 -4.25 234 17179869184 'y'",
                "-- RawValue",
                "set_raw_values exitcode: Some(0)",
                "after: 24234 -4.25 234 17179869184 'y'",
                "-- get_lock and get_obj",
                "get_obj: 5",
                "get_lock acquire: true",
                "get_lock release: ()",
                "with_lock: the lock given: true",
                "Array get_obj: [1, 2]",
                "-- a counter, 4 processes adding 100 each under the lock",
                "counter: 400",
                "-- Array",
                "len: 10",
                "arr[3]: 3",
                "arr[2..5]: [2, 3, 4]",
                "running_sums exitcode: Some(0)",
                "after: [0, 1, 3, 6, 10, 15, 21, 28, 36, 45]",
                "-- Array from a size",
                "len: 10, all: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
                "empty: len 0, is_empty true, all []",
                "-- RawArray",
                "raw_running_sums exitcode: Some(0)",
                "after: [0, 1, 3, 6, 10, 15, 21, 28, 36, 45]",
                "write [7, 8] at 8: ()",
                "last three: [28, 7, 8]",
                "-- errors",
                "arr[10]: error InvalidArgument: invalid index",
                "arr[10] = 1: error InvalidArgument: invalid index",
                "read 9..11: error InvalidArgument: invalid index",
                "write 9..11: error InvalidArgument: invalid index",
                "read at usize::MAX: error InvalidArgument: invalid index",
                "too large: error InvalidArgument: an array of 1073741823 u64 is larger than 4 GiB",
                "beyond message: error LimitExceeded: a shared block of 68157440 bytes exceeds limit message = 67108864 bytes",
            ])
        );
    }
}

backend_tests! {
    /// Manager().dict() and .list(): CPython's `_TestContainers` list and dict cases, key order,
    /// two children changing them (a counter under a lock), and what cannot go in.
    fn sync_managed(backend) {
        let out = run(backend, SYNC_MANAGED, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- list",
                "empty: true, len: 0",
                "after 3 appends: [\"a\", \"b\", \"c\"]",
                "l[1]: \"b\"",
                "l[1] = B: ()",
                "insert(0, z): ()",
                "insert(99, end): ()",
                "now: [\"z\", \"a\", \"B\", \"c\", \"end\"]",
                "pop(): \"end\"",
                "pop(0): \"z\"",
                "now: [\"a\", \"B\", \"c\"]",
                "l[3]: error InvalidArgument: list index out of range",
                "l[3] = x: error InvalidArgument: list index out of range",
                "pop(3): error InvalidArgument: pop index out of range",
                "pop() of an empty list: error InvalidArgument: pop from empty list",
                "-- dict",
                "items: [(\"one\", 1), (\"two\", 2), (\"three\", 3)]",
                "keys: [\"one\", \"two\", \"three\"]",
                "values: [1, 2, 3]",
                "len: 3",
                "d[two]: 2",
                "get(four): None",
                "d[four]: error InvalidArgument: the dictionary has no such key",
                "one in d: true",
                "d[one] = 10 (keeps its place): ()",
                "pop(two): Some(2)",
                "pop(two) again: None",
                "d[two] = 20 (goes last): ()",
                "items: [(\"one\", 10), (\"three\", 3), (\"two\", 20)]",
                "clear: ()",
                "items: [], empty: true",
                "-- shared with two children",
                "child exitcode: Some(0)",
                "child exitcode: Some(0)",
                "child: Some(7), hits: Some(100)",
                "list: [\"from the child\", \"from the child\"]",
                "-- values that cannot go in",
                "a Queue as a value: error InvalidArgument: a Queue can only be passed to another process in a child's start arguments, a queue item or a pipe message",
                "a 65 MiB item: error LimitExceeded: an item of 68157444 bytes exceeds limit message = 67108864 bytes",
            ])
        );
    }
}

backend_tests! {
    /// Processes killed at arbitrary points of acquiring, holding and releasing a Lock and an
    /// RLock (under `native`, mostly in the child's own fast path), 20 rounds of 3 each: the
    /// lock is never stuck, no dead process holds it, and the count kept under it is changed
    /// only by its holder.
    fn sync_lock_kill(backend) {
        let out = run(backend, SYNC_LOCK_KILL, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "Lock: 20 rounds of 3 killed processes, never stuck",
                "RLock: 20 rounds of 3 killed processes, never stuck",
                "count went up in every round",
            ])
        );
    }
}

backend_tests! {
    /// Producers and consumers of one queue killed at arbitrary points of their puts and
    /// gets, 10 rounds of 3 and 2: every item whole, none twice, the queue working on. (The
    /// soak command runs 1,000 rounds.)
    fn sync_queue_kill(backend) {
        let out = run(backend, SYNC_QUEUE_KILL, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&["10 rounds: every item whole, none twice, the queue works on"])
        );
    }
}

backend_tests! {
    /// Sync objects inside queue items and pipe messages: the taker holds them (an event,
    /// a lock, a queue, a pipe end), the sender still does; a closed object cannot be
    /// passed, nor can one go into a managed dictionary; a queue put into itself is
    /// harmless.
    fn sync_pass(backend) {
        let out = run(backend, SYNC_PASS, &[]);
        assert_clean(&out, backend, &[]);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- objects in a queue item",
                "put a parcel: ()",
                "reply: \"hello from the courier\"",
                "done: true",
                "-- a pipe end in a queue item",
                "put the end: ()",
                "recv: \"pong\"",
                "courier exitcode: Some(0)",
                "the courier's end is gone: Err(Eof)",
                "-- a queue in a pipe message",
                "send the queue: ()",
                "get what the receiver put: 42",
                "receiver exitcode: Some(0)",
                "-- what cannot be passed",
                "put a closed queue: error InvalidArgument: a closed Queue cannot be passed to a \
                 child process",
                "the queue is still empty: true",
                "an event as a dictionary value: error InvalidArgument: an Event can only be \
                 passed to another process in a child's start arguments, a queue item or a pipe \
                 message",
                "-- a queue put into itself",
                "put: ()",
                "the queue taken out is the same queue: true",
                "put again, and leave it there: ()",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-1"),
            lines(&[
                "courier: try_acquire the lock main holds: false",
                "courier: recv through the end it was sent: \"ping\"",
            ]),
            "{backend:?}"
        );
    }
}
