//! Python programs as guests: `tests/python/mp_tests.py`, a port of part of CPython's
//! `Lib/test/_test_multiprocessing.py`, built once by `wasmproc build` (componentize-py)
//! and run by `wasmproc run` on both backends, with exact output and exit codes.

use crate::cli::{wasmproc, wasmproc_on};
use crate::harness::backend_tests;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::SystemTime;
use wasmproc::BackendKind;
use wasmproc_tests::GUEST_TARGET_DIR;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// When `path` was last modified (the epoch when it is missing).
fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// What the component is built from: the test program, the Python package, the WIT and
/// the `wasmproc` binary that carries them.
fn inputs() -> Vec<PathBuf> {
    let root = root();
    let mut inputs = vec![
        root.join("tests/python/mp_tests.py"),
        root.join("wit/process.wit"),
        PathBuf::from(env!("CARGO_BIN_EXE_wasmproc")),
    ];
    let package = root.join("python/wasmproc");
    for entry in std::fs::read_dir(&package).expect("python/wasmproc") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "py") {
            inputs.push(path);
        }
    }
    inputs
}

/// The test program's component, built by `wasmproc build` once per test run, or not at
/// all when the one under target/ is newer than everything it is built from.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(GUEST_TARGET_DIR).join("python");
        std::fs::create_dir_all(&dir).expect("create the Python guests' directory");
        let program = dir.join("mp_tests.wasm");
        let built_at = modified(&program);
        if inputs().iter().all(|input| modified(input) < built_at) {
            return program;
        }
        let _ = std::fs::remove_file(&program);
        let out = wasmproc()
            .arg("build")
            .arg(root().join("tests/python/mp_tests.py"))
            .arg("-o")
            .arg(&program)
            .output()
            .expect("run wasmproc build");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("{}\n", program.display()),
            "wasmproc build prints the component's path, one line"
        );
        program
    })
}

/// `wasmproc run mp_tests.wasm ARGS` on `backend`.
fn run(backend: BackendKind, args: &[&str]) -> Output {
    wasmproc_on(backend)
        .arg("run")
        .arg(built())
        .args(args)
        .output()
        .expect("run wasmproc run")
}

/// The lines a group prints when each of its tests passes.
fn passing(tests: &[&str]) -> String {
    tests.iter().map(|t| format!("{t} ok\n")).collect()
}

/// Runs group `group` and checks its exit code, stdout (every test passed) and stderr.
fn group(backend: BackendKind, group: &str, tests: &[&str], stderr: &str) {
    let out = run(backend, &[group]);
    assert_eq!(
        (
            text(&out.stdout).as_str(),
            text(&out.stderr).as_str(),
            out.status.code()
        ),
        (passing(tests).as_str(), stderr, Some(0)),
        "{backend:?}"
    );
}

/// What `_daemon_child` (a daemonic child starting a child) prints on stderr.
const DAEMON_CHILD: &str = "Process Process-35:
Traceback (most recent call last):
  File \"mp_tests.py\", line 377, in _daemon_child
    p.start()
    ~~~~~~~^^
AssertionError: daemonic processes are not allowed to have children
";

backend_tests! {
    /// CPython's `_TestProcess` and `_TestSubclassingProcess`.
    fn python_process(backend) {
        group(
            backend,
            "process",
            &[
                "test_process",
                "test_args_argument",
                "test_daemon_argument",
                "test_parent_process_attributes",
                "test_parent_process",
                "test_terminate",
                "test_kill",
                "test_cpu_count",
                "test_active_children",
                "test_recursion",
                "test_sentinel",
                "test_close",
                "test_many_processes",
                "test_lose_target_ref",
                "test_start_twice_and_errors",
                "test_names",
                "test_daemon_children",
                "test_subclassing",
                "test_sys_exit",
            ],
            DAEMON_CHILD,
        );
    }

    /// CPython's `_TestQueue`.
    fn python_queue(backend) {
        group(
            backend,
            "queue",
            &[
                "test_put",
                "test_get",
                "test_fork",
                "test_qsize",
                "test_task_done",
                "test_timeout",
                "test_closed_queue_put_get_exceptions",
                "test_queue_in_queue",
            ],
            "",
        );
    }

    /// CPython's `_TestLock`, `_TestSemaphore`, `_TestEvent` and `_TestConnection`.
    fn python_sync(backend) {
        group(
            backend,
            "sync",
            &[
                "test_lock",
                "test_rlock",
                "test_lock_context",
                "test_lock_between_processes",
                "test_semaphore",
                "test_bounded_semaphore",
                "test_semaphore_timeout",
                "test_event",
                "test_connection",
                "test_duplex_false",
                "test_wait",
            ],
            "",
        );
    }

    /// CPython's `_TestPool`.
    fn python_pool(backend) {
        group(
            backend,
            "pool",
            &[
                "test_pool",
                "test_make_pool",
                "test_terminate_pool",
                "test_context",
                "test_pool_not_running",
                "test_maxtasksperchild",
                "test_initializer",
            ],
            "",
        );
    }

    /// CPython's `_TestSimpleQueue`, and `JoinableQueue` over the host's task count.
    fn python_queues2(backend) {
        group(
            backend,
            "queues2",
            &[
                "test_simplequeue_empty",
                "test_simplequeue_empty_exceptions",
                "test_simplequeue_close",
                "test_joinable_queue",
            ],
            "",
        );
    }

    /// CPython's `_TestCondition`.
    fn python_condition(backend) {
        group(
            backend,
            "condition",
            &[
                "test_notify",
                "test_notify_all",
                "test_notify_n",
                "test_condition_timeout",
                "test_waitfor",
                "test_waitfor_timeout",
                "test_wait_result",
                "test_condition_errors",
                "test_condition_owner_dies",
            ],
            "",
        );
    }

    /// CPython's `_TestBarrier`.
    fn python_barrier(backend) {
        group(
            backend,
            "barrier",
            &[
                "test_barrier",
                "test_barrier_10",
                "test_wait_return",
                "test_action",
                "test_abort",
                "test_reset",
                "test_abort_and_reset",
                "test_barrier_timeout",
                "test_default_timeout",
                "test_single_thread",
                "test_thousand",
                "test_barrier_action_fails",
                "test_barrier_party_dies",
            ],
            "",
        );
    }

    /// CPython's `_TestValue` and `_TestArray`.
    fn python_sharedctypes(backend) {
        group(
            backend,
            "sharedctypes",
            &[
                "test_value",
                "test_rawvalue",
                "test_getobj_getlock",
                "test_array",
                "test_array_from_size",
                "test_rawarray",
                "test_getobj_getlock_obj",
                "test_value_typecodes",
            ],
            "",
        );
    }

    /// CPython's `_TestContainers` and `TestSyncManagerTypes`, over `Manager()`.
    fn python_managers(backend) {
        group(
            backend,
            "managers",
            &[
                "test_list",
                "test_list_iter",
                "test_dict",
                "test_dict_iter",
                "test_namespace",
                "test_manager_in_child",
                "test_smt_types",
            ],
            "",
        );
    }

    /// A child's uncaught exception prints `Process <name>:` and the traceback and gives
    /// exit code 1; `sys.exit(str)` prints the string and gives 1; `sys.exit(n)` gives n
    /// modulo 256; an unpicklable target fails at start().
    fn python_child_errors(backend) {
        group(
            backend,
            "errors",
            &["test_child_errors"],
            "Process Boom:
Traceback (most recent call last):
  File \"mp_tests.py\", line 951, in boom
    raise ValueError(f\"bad {n}\")
ValueError: bad 1
ignore this
",
        );
    }

    /// An uncaught exception in main prints the traceback and gives exit code 1, after the
    /// non-daemonic children were joined.
    fn python_main_raises(backend) {
        let out = run(backend, &["main-raises"]);
        assert_eq!(
            (
                text(&out.stdout).as_str(),
                text(&out.stderr).as_str(),
                out.status.code()
            ),
            (
                "main raises\nthe child ends first\n",
                "Traceback (most recent call last):
  File \"mp_tests.py\", line 2014, in <module>
    sys.exit(main(sys.argv[1:] or list(GROUPS)))
             ~~~~^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File \"mp_tests.py\", line 1998, in main
    main_raises()
    ~~~~~~~~~~~^^
  File \"mp_tests.py\", line 981, in main_raises
    boom(2)
    ~~~~^^^
  File \"mp_tests.py\", line 951, in boom
    raise ValueError(f\"bad {n}\")
ValueError: bad 2
",
                Some(1)
            ),
            "{backend:?}"
        );
    }

    /// `sys.exit(7)` in main: exit code 7, the daemonic child terminated, the other joined.
    fn python_main_exits(backend) {
        let out = run(backend, &["main-exits"]);
        assert_eq!(
            (
                text(&out.stdout).as_str(),
                text(&out.stderr).as_str(),
                out.status.code()
            ),
            ("main exits\na child is joined\n", "", Some(7)),
            "{backend:?}"
        );
    }
}

#[test]
fn python_build_refuses_what_is_not_a_script() {
    let out = wasmproc()
        .args(["build", "app.txt"])
        .output()
        .expect("run wasmproc build");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "wasmproc: error: app.txt: not a Python script (.py); build a crate with \
         --manifest-path\n"
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("missing.py");
    let out = wasmproc()
        .arg("build")
        .arg(&missing)
        .output()
        .expect("run wasmproc build");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("wasmproc: error: {}: no such file\n", missing.display())
    );
}
