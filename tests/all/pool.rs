//! `Pool`: the cases of CPython's `_TestPool`, `_TestPoolWorkerErrors` and
//! `_TestPoolWorkerLifetime` (Lib/test/_test_multiprocessing.py), ported in our own words,
//! and failing tasks (a panic, an exit, a killed worker). Each guest program in
//! `tests/programs/src/bin/pool_*.rs` prints what it observes; each test here asserts that
//! output exactly, under every backend.

use crate::harness::{Outcome, backend_tests, lines, run};
use wasmproc::{BackendKind, ExitStatus};
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_pool!(assert_test_exists);

const NOT_RUNNING: &str = "error InvalidState: Pool not running";

/// Asserts that the run succeeded and that nothing was written to the main process's
/// stderr.
fn assert_success(out: &Outcome, backend: BackendKind) {
    assert_eq!(
        out.status,
        ExitStatus::SUCCESS,
        "{backend:?}: stderr {:?}",
        out.stderr()
    );
    assert_eq!(out.stderr(), "", "{backend:?}");
}

/// Asserts that no process but main wrote to stdout, and no worker to stderr.
fn assert_quiet_workers(out: &Outcome, backend: BackendKind) {
    for name in out.names().iter().skip(1) {
        assert_eq!(out.stdout_of(name), "", "{backend:?} {name}");
        assert_eq!(out.stderr_of(name), "", "{backend:?} {name}");
    }
}

fn squares(n: i64) -> String {
    format!("{:?}", (0..n).map(|x| x * x).collect::<Vec<_>>())
}

backend_tests! {
    fn pool_map(backend) {
        let out = run(backend, POOL_MAP, &[]);
        assert_success(&out, backend);
        assert_quiet_workers(&out, backend);
        let one_by_one: Vec<Option<String>> =
            (0..10).map(|x: i64| Some((x * x).to_string())).collect();
        let expected = [
            "workers: 4".to_string(),
            "-- apply".into(),
            "apply sqr 5: 25".into(),
            "apply mul (3, 4): 12".into(),
            "apply fma (2, 3, 4): 10".into(),
            "apply shout: \"HELLO\"".into(),
            "apply four: 10".into(),
            "-- map".into(),
            format!("map sqr 0..10: {}", squares(10)),
            "map sqr 0..100 == squares: true".into(),
            "map_chunked sqr 0..100 chunksize 1 == squares: true".into(),
            "map_chunked sqr 0..100 chunksize 7 == squares: true".into(),
            "map_chunked sqr 0..100 chunksize 20 == squares: true".into(),
            "map_chunked sqr 0..100 chunksize 100 == squares: true".into(),
            "map_chunked sqr 0..100 chunksize 1000 == squares: true".into(),
            "map shout: [\"A\", \"BC\", \"ÜNÏ\"]".into(),
            "-- starmap".into(),
            "starmap mul: [0, 8, 14, 18, 20, 20, 18, 14, 8, 0]".into(),
            "starmap mul 100 == expected: true".into(),
            "starmap fma: [5, 26]".into(),
            "-- imap".into(),
            format!("imap sqr 0..10: {}", squares(10)),
            format!("imap sqr 0..10 chunksize 3, one by one: {one_by_one:?}"),
            "imap after the end: None".into(),
            "imap sqr 0..1000 chunksize 100 == squares: true".into(),
            "-- imap_unordered".into(),
            "imap_unordered sqr 0..10 chunksize 1, sorted == squares: true".into(),
            "imap_unordered sqr 0..1000 chunksize 100, sorted == squares: true".into(),
            "imap_unordered sqr 0..1000 chunksize 7, sorted == squares: true".into(),
            "-- empty iterables".into(),
            "map: []".into(),
            "map_chunked: []".into(),
            "starmap: []".into(),
            "imap: 0".into(),
            "imap_unordered: 0".into(),
            "map_chunked with chunksize 0: error InvalidArgument: Chunksize must be 1+, not 0"
                .into(),
            "-- close and join".into(),
            "close: ()".into(),
            format!("map after close: {NOT_RUNNING}"),
            format!("apply after close: {NOT_RUNNING}"),
            "join: ()".into(),
            "workers ended: true".into(),
            "-- pool sizes".into(),
            "Pool::new(3) workers: 3".into(),
            format!("map on it: {}", squares(5)),
            "Pool::new(0) workers == cpu_count: true".into(),
            "builder processes(2) workers: 2".into(),
        ];
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
    }
}

backend_tests! {
    fn pool_async(backend) {
        let out = run(backend, POOL_ASYNC, &[]);
        assert_success(&out, backend);
        let values: Vec<String> = (0..20).map(|x: i64| (x * x).to_string()).collect();
        let expected = [
            "-- apply_async".to_string(),
            "get(None): 49".into(),
            "ready: true".into(),
            "successful: true".into(),
            "get again: 49".into(),
            "-- a slow task".into(),
            "get(0.2): error Timeout: timed out waiting for the result".into(),
            "ready: false".into(),
            "successful before ready: error InvalidState: AsyncResult not ready".into(),
            "wait(0.1): ()".into(),
            "ready after wait(0.1): false".into(),
            "get(60): 36".into(),
            "ready: true".into(),
            "successful: true".into(),
            "-- wait, then get".into(),
            "wait(None): ()".into(),
            "ready: true".into(),
            "get(0): 81".into(),
            "-- a failing task".into(),
            "wait(60): ()".into(),
            "ready: true".into(),
            "successful: false".into(),
            "get: error TaskFailed, mentions the panic: true".into(),
            "-- many at once".into(),
            format!("values: {}", values.join(" ")),
            "-- join before close".into(),
            "join: error InvalidState: Pool is still running".into(),
            "-- close, then join".into(),
            "close: ()".into(),
            "close again: ()".into(),
            format!("apply_async after close: {NOT_RUNNING}"),
            format!("apply after close: {NOT_RUNNING}"),
            format!("map after close: {NOT_RUNNING}"),
            "join: ()".into(),
            "tasks submitted before close finished: 0 1 4 9 16 25".into(),
            "-- terminate".into(),
            "terminate: ()".into(),
            "join: ()".into(),
            "workers ended: true".into(),
            "stuck tasks ready: false".into(),
            format!("apply after terminate: {NOT_RUNNING}"),
            "terminate again: ()".into(),
            "-- a dropped pool terminates its workers".into(),
            "workers ended: true".into(),
        ];
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
    }
}

backend_tests! {
    fn pool_lifetime(backend) {
        let out = run(backend, POOL_LIFETIME, &[]);
        assert_success(&out, backend);
        assert_quiet_workers(&out, backend);
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- maxtasksperchild=1",
                "workers: 2",
                "distinct pids of 10 tasks: 10",
                "starmap after the replacements: [9, 16]",
                "-- maxtasksperchild=10",
                "initial workers have pids: true",
                "100 results correct: true",
                "100 more tasks ran in at least 10 workers: true",
                "-- maxtasksperchild=1, closed early",
                "maxtasksperchild(0): error InvalidArgument: maxtasksperchild must be a positive \
                 int or None",
                "close: ()",
                "join: ()",
                "results: 0 1 4 9 16 25",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn pool_failures(backend) {
        let out = run(backend, POOL_FAILURES, &[]);
        assert_success(&out, backend);
        let panicked = "error TaskFailed: task failed in worker Process-N: panicked at \
                        src/bin/pool_failures.rs:L:C:\\nunlucky 13";
        let ended = |code: i32| {
            format!(
                "error TaskFailed: worker Process-N ended with exitcode {code} while running \
                 the task"
            )
        };
        let mut expected = vec![
            "-- a panicking task".to_string(),
            format!("map with 13: {panicked}"),
            "apply 4 afterwards: 16".into(),
            format!("apply 13: {panicked}"),
            "imap item 0: 1".into(),
            "imap item 1: 4".into(),
            format!("imap item 2: {panicked}"),
            "imap item 3: 16".into(),
            // As in CPython, a failing chunk fails as a whole: [13, 1] and [13, 6].
            "imap_unordered: values [4, 9, 16, 25], failed 2".into(),
            "apply_async 5: 25".into(),
            "  successful: true".into(),
            format!("apply_async 13: {panicked}"),
            "  successful: false".into(),
            "apply_async 6: 36".into(),
            "  successful: true".into(),
            format!("map afterwards: {}", squares(5)),
            "-- a task that exits".into(),
            format!("apply exit_with 7: {}", ended(7)),
            format!("apply exit_with 0: {}", ended(0)),
            "apply 3 afterwards: 9".into(),
            "-- tasks given with one that exits".into(),
            "warm-up: 100".into(),
            "imap item 0: 10".into(),
            "imap item 1: 20".into(),
            format!("imap item 2: {}", ended(3)),
            "imap item 3: 40".into(),
            "imap item 4: 50".into(),
            "-- a long task does not hold up the tasks given after it".into(),
            "map of 20 while it runs: 20".into(),
            "  the long task still running: true".into(),
            "the long task: 3000".into(),
            "warm-up: 200".into(),
            "  the first 20 results are the quick tasks': true".into(),
        ];
        for (signal, code) in [("kill", -9), ("terminate", -15)] {
            expected.extend([
                format!("-- the worker is sent {signal} mid-task"),
                "apply 1 (the worker is up): 1".into(),
                format!("the task: {}", ended(code)),
                "apply 5 afterwards: 25".into(),
                "workers: 1, replaced: true".into(),
                "close: ()".into(),
                "join: ()".into(),
            ]);
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        // Each panicking task's worker reported its panic; nobody else wrote to stderr.
        let mut reports = 0;
        for name in out.names().iter().skip(1) {
            let stderr = out.stderr_of(name);
            if !stderr.is_empty() {
                let report: Vec<&str> = stderr.lines().collect();
                assert_eq!(report.len(), 3, "{backend:?} {name}: {stderr}");
                assert_eq!(report[0], format!("Process {name}:"), "{backend:?}");
                assert!(
                    report[1].starts_with("panicked at src/bin/pool_failures.rs:"),
                    "{backend:?} {name}: {stderr}"
                );
                assert_eq!(report[2], "unlucky 13", "{backend:?} {name}");
                reports += 1;
            }
        }
        // map, apply, imap, imap_unordered (twice) and apply_async ran 13.
        assert_eq!(reports, 6, "{backend:?}");
    }
}

backend_tests! {
    /// `map_async`, `starmap_async`, `callback`/`error_callback` and `initializer`.
    fn pool_callbacks(backend) {
        let out = run(backend, POOL_CALLBACKS, &[]);
        assert_success(&out, backend);
        let expected = [
            "-- map_async",
            "get: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
            "ready: true",
            "successful: true",
            "get, chunksize 3: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
            "get, no items: []",
            "chunksize 0: error InvalidArgument: Chunksize must be 1+, not 0",
            "-- map_async callbacks",
            "wait: ()",
            "calls: [\"callback [1] in MainProcess\"]",
            "wait: ()",
            "calls: [\"error_callback TaskFailed, mentions the panic: true\"]",
            "successful: false",
            "get: error TaskFailed, mentions the panic: true",
            "-- starmap_async",
            "get: [0, 2, 6, 12, 20, 30, 42, 56, 72, 90]",
            "-- apply_async callback",
            "get: 49",
            "calls: [\"callback 49 in MainProcess\"]",
            "get again: 49",
            "calls after get again: 1",
            "-- callbacks of dropped results run by close and join",
            "close: ()",
            "join: ()",
            "callbacks got: [0, 1, 4, 9, 16]",
            "error_callback: [\"error_callback TaskFailed, mentions the panic: true\"]",
            "-- terminate calls no callback",
            "terminate: ()",
            "get: error TaskFailed: pool terminated",
            "calls: []",
            "-- initializer",
            "tags: [7, 7, 7, 7, 7, 7, 7, 7]",
            "close: ()",
            "join: ()",
            "initializer runs: 2, in distinct workers: 2",
            "-- initializer in every replacement worker",
            "apply 0: (9, 0)",
            "apply 1: (9, 1)",
            "apply 2: (9, 2)",
            "-- initargs that cannot be passed",
            "build: error InvalidArgument: a closed Queue cannot be passed to a child process",
            "-- map_async ready at the first failure",
            "get, the slow call still running: error TaskFailed, mentions the panic: true",
            "ready: true",
            "successful: false",
            "calls: [\"error_callback TaskFailed, mentions the panic: true\"]",
            "open the gate: ()",
            "close: ()",
            "join: ()",
            "calls after join: 1",
        ];
        assert_eq!(out.stdout(), lines(&expected), "{backend:?}");
        // The three failing tasks' panics, each on its worker's stderr.
        let panics: Vec<String> = out
            .names()
            .iter()
            .skip(1)
            .map(|n| out.stderr_of(n))
            .filter(|e| !e.is_empty())
            .collect();
        assert_eq!(panics.len(), 3, "{backend:?}: {panics:?}");
        assert!(
            panics.iter().any(|e| e.contains("invalid literal for int() with base 10: \"a\"")),
            "{backend:?}: {panics:?}"
        );
        assert_eq!(
            panics.iter().filter(|e| e.contains("KeyError: 'key'")).count(),
            2,
            "{backend:?}: {panics:?}"
        );
    }
}
