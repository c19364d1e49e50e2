//! The process-lifecycle cases of CPython's `_TestProcess` and `_TestSubclassingProcess`
//! (Lib/test/_test_multiprocessing.py), ported in our own words: each guest program in
//! `tests/programs/src/bin/process_*.rs` prints what it observes, and each test here
//! asserts that output exactly, under every backend.

use crate::harness::{backend_tests, lines, run, run_limited};
use wasmproc::ExitStatus;
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_process!(assert_test_exists);

backend_tests! {
    fn process_lifecycle(backend) {
        let out = run(backend, PROCESS_LIFECYCLE, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "name: \"Process-1\"",
                "pid before start: None",
                "is_alive before start: false",
                "exitcode before start: None",
                "daemon: false",
                "active before start: false",
                "join before start: error InvalidState: can only join a started process",
                "sentinel before start: error InvalidState: process not started",
                "start: ()",
                "is_alive after start: true",
                "exitcode after start: None",
                "pid after start is some: true",
                "active after start: true",
                "start again: error InvalidState: cannot start a process twice",
                "join: ()",
                "exitcode after join: Some(0)",
                "is_alive after join: false",
                "active after join: false",
                "join again: ()",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-1"),
            "child Process-1: args=(7, \"seven\")\n"
        );
        assert_eq!(out.stderr(), "");
    }
}

backend_tests! {
    fn process_current(backend) {
        let out = run(backend, PROCESS_CURRENT, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        let main = out.stdout();
        let main_pid = field(&main, "pid");
        assert_eq!(
            main.replace(&format!("pid: {main_pid}\n"), "pid: <main>\n")
                .replace(
                    &format!(
                        "child pid seen by parent: {}\n",
                        field(&main, "child pid seen by parent")
                    ),
                    "child pid seen by parent: <child>\n"
                ),
            lines(&[
                "name: \"MainProcess\"",
                "pid: <main>",
                "daemon: false",
                "is_alive: true",
                "exitcode: None",
                "parent_process is none: true",
                "authkey length: 32",
                "authkey debug: AuthKey(<32 bytes hidden>)",
                "cpu_count positive: true",
                "join self: error NotAChild: can only join a child process",
                "terminate self: error NotAChild: can only terminate a child process",
                "kill self: error NotAChild: can only kill a child process",
                "start self: error NotAChild: can only start a process object created by current process",
                "close self: error NotAChild: can only close a child process",
                "set_daemon self: error NotAChild: can only set daemon on a child process",
                "sentinel self: error InvalidState: the current process has no sentinel",
                "rename self: ()",
                "renamed: \"Boss\"",
                "child started by Boss: Process-1",
                "child pid seen by parent: <child>",
                "child exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        let child = out.stdout_of("Process-1");
        assert_eq!(field(&child, "parent pid"), main_pid, "{backend:?}");
        assert_eq!(
            field(&child, "child pid"),
            field(&main, "child pid seen by parent")
        );
        assert_ne!(field(&child, "child pid"), main_pid);
        let child_pid = field(&child, "child pid");
        assert_eq!(
            child
                .replace(&format!("child pid: {child_pid}\n"), "")
                .replace(&format!("parent pid: {main_pid}\n"), ""),
            lines(&[
                "child name: \"Process-1\"",
                "child daemon: false",
                "child is_alive: true",
                "parent name: \"Boss\"",
                "parent is_alive: true",
                "parent exitcode: None",
                "parent daemon: false",
                "terminate parent: error NotAChild: can only terminate a child process",
                "start parent: error NotAChild: can only start a process object created by current process",
                "same authkey: true",
            ]),
            "{backend:?}"
        );
    }
}

/// The value of the line `label: value`.
fn field(text: &str, label: &str) -> String {
    let prefix = format!("{label}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no line '{label}: ...' in:\n{text}"))
        .to_string()
}

backend_tests! {
    fn process_exitcodes(backend) {
        let out = run(backend, PROCESS_EXITCODES, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "returns exitcode: Some(0)",
                "exit(0) exitcode: Some(0)",
                "exit(1) exitcode: Some(1)",
                "exit(3) exitcode: Some(3)",
                "exit(255) exitcode: Some(255)",
                "exit(256) exitcode: Some(0)",
                "exit(300) exitcode: Some(44)",
                "exit(-1) exitcode: Some(255)",
                // WASI 0.2's exit carries only success or failure through Debian's
                // wasi-libc: std::process::exit(7) arrives as 1 (README, caveats).
                "std_exit(7) exitcode: Some(1)",
                "panics exitcode: Some(1)",
                "traps exitcode: Some(1)",
                "typed-ok exitcode: Some(0)",
                "typed-bad exitcode: Some(1)",
                "unknown target: error UnknownTarget: program process_exitcodes.wasm has no target named 'nope'",
            ]),
            "{backend:?}"
        );
        assert_eq!(out.stdout_of("exit(3)"), "exiting with 3\n");
        assert_eq!(out.stdout_of("typed-ok"), "typed got 42\n");
        let panic = out.stderr_of("panics");
        let panic_lines: Vec<&str> = panic.lines().collect();
        assert_eq!(panic_lines.len(), 3, "{panic}");
        assert_eq!(panic_lines[0], "Process panics:");
        assert!(
            panic_lines[1].starts_with("panicked at src/bin/process_exitcodes.rs:"),
            "{panic}"
        );
        assert_eq!(panic_lines[2], "deliberate panic");
        assert_eq!(
            out.stderr_of("traps"),
            "Process traps:\nwasm trap: wasm `unreachable` instruction executed\n"
        );
        assert_eq!(
            out.stderr_of("typed-bad"),
            "Process typed-bad:\ncannot decode the arguments of target 'typed' as u32: \
             Hit the end of buffer, expected more data\n"
        );
        assert_eq!(out.stderr_of("returns"), "");
    }
}

fn signals_expected(mode: &str) -> String {
    let code = if mode == "terminate" { -15 } else { -9 };
    let mut expected = Vec::new();
    for target in ["sleeper", "busy", "joiner", "waiter"] {
        expected.extend([
            format!(
                "{target} signal before start: error InvalidState: can only {mode} a started process"
            ),
            format!("{target} join(0.1): ()"),
            format!("{target} join waited: true"),
            format!("{target} exitcode: None"),
            format!("{target} is_alive: true"),
            format!("{target} {mode}: ()"),
            format!("{target} join: ()"),
            format!("{target} exitcode: Some({code})"),
            format!("{target} is_alive: false"),
            format!("{target} {mode} again: ()"),
            format!("{target} exitcode: Some({code})"),
        ]);
    }
    expected.iter().map(|l| format!("{l}\n")).collect()
}

backend_tests! {
    fn process_signals(backend) {
        for mode in ["terminate", "kill"] {
            let out = run(backend, PROCESS_SIGNALS, &[mode]);
            assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?} {mode}");
            assert_eq!(out.stdout(), signals_expected(mode), "{backend:?} {mode}");
            // A signalled process prints nothing: no panic message, no trap report.
            for name in out.names() {
                assert_eq!(out.stderr_of(&name), "", "{backend:?} {mode} {name}");
            }
        }
    }
}

backend_tests! {
    fn process_active(backend) {
        let out = run(backend, PROCESS_ACTIVE, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "before start: []",
                "after start, quick joined: [\"Process-1\", \"Process-2\"]",
                "after terminating Process-1: [\"Process-2\"]",
                "after dropping Process-2: [\"Process-2\"]",
                "killed Process-2: Some(-9)",
                "at the end: []",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_recursion(backend) {
        let out = run(backend, PROCESS_RECURSION, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        let expected = [
            "MainProcess",
            "Process-1",
            "Process-1:1",
            "Process-1:2",
            "Process-2",
            "Process-2:1",
            "Process-2:2",
        ];
        assert_eq!(out.names(), expected, "{backend:?}");
        for name in expected {
            assert_eq!(out.stdout_of(name), format!("{name}\n"), "{backend:?}");
        }
    }
}

backend_tests! {
    fn process_sentinel(backend) {
        let out = run(backend, PROCESS_SENTINEL, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "sentinel before start: error InvalidState: process not started",
                "wait(0): 0",
                "wait(0.05): 0",
                "wait(None) after terminate: true",
                "exitcode: Some(-15)",
                "ready of [sleeper, quick]: [\"quick\"]",
                "ready after kill: [\"sleeper\", \"quick\"]",
                "wait on nothing (0.01): 0",
                "wait on a bogus sentinel: error InvalidArgument: 987654321 is not a sentinel of this process",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_close(backend) {
        let out = run(backend, PROCESS_CLOSE, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        let closed = "error Closed: process object is closed";
        let stdout = out.stdout();
        let sentinel_line = stdout
            .lines()
            .find(|l| l.starts_with("wait on its sentinel: "))
            .expect("wait line");
        assert!(
            sentinel_line.starts_with("wait on its sentinel: error InvalidArgument: ")
                && sentinel_line.ends_with(" is not a sentinel of this process"),
            "{sentinel_line}"
        );
        assert_eq!(
            stdout.replace(&format!("{sentinel_line}\n"), ""),
            lines(&[
                "close while running: error InvalidState: Cannot close a process while it is \
                 still running. You should first call join() or terminate().",
                "is_alive: true",
                "close: ()",
                "close again: ()",
                &format!("start: {closed}"),
                &format!("join: {closed}"),
                &format!("is_alive: {closed}"),
                &format!("exitcode: {closed}"),
                &format!("pid: {closed}"),
                &format!("name: {closed}"),
                &format!("set_name: {closed}"),
                &format!("daemon: {closed}"),
                &format!("set_daemon: {closed}"),
                &format!("terminate: {closed}"),
                &format!("kill: {closed}"),
                &format!("sentinel: {closed}"),
                "close unstarted: ()",
                &format!("start after close: {closed}"),
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_many(backend) {
        let out = run(backend, PROCESS_MANY, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "returned: {\"Some(0)\": 100}",
                "distinct pids: 100",
                "alive before terminate: 100",
                "terminated: {\"Some(-15)\": 100}",
                "last name: Process-200",
            ]),
            "{backend:?}"
        );
        assert_eq!(out.names().len(), 201);
    }
}

backend_tests! {
    fn process_daemon(backend) {
        let out = run(backend, PROCESS_DAEMON, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "default daemon: false",
                "set_daemon before start: ()",
                "daemon after set: true",
                "builder daemon: true",
                "set_daemon after start: error InvalidState: process has already started",
                "daemonic parent exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-4"),
            lines(&[
                "in daemon: current daemon: true",
                "in daemon: child daemon inherited: true",
                "in daemon: start child: error InvalidState: daemonic processes are not \
                 allowed to have children",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_exithandler(backend) {
        for (how, status) in [
            ("return", ExitStatus::Code(0)),
            ("exit", ExitStatus::Code(5)),
            ("panic", ExitStatus::Code(1)),
        ] {
            let out = run(backend, PROCESS_EXITHANDLER, &[how]);
            assert_eq!(out.status, status, "{backend:?} {how}");
            assert_eq!(out.stdout(), format!("main ends by {how}\n"));
            // The non-daemon child was joined before the run ended: it finished its work.
            assert_eq!(
                out.stdout_of("Process-2"),
                "slow child finished\n",
                "{backend:?} {how}"
            );
            assert_eq!(out.names(), ["MainProcess", "Process-1", "Process-2"]);
            if how == "panic" {
                let stderr = out.stderr();
                assert!(
                    stderr.starts_with("panicked at src/bin/process_exithandler.rs:"),
                    "{stderr}"
                );
                assert!(stderr.ends_with(":\nmain panics\n"), "{stderr}");
                assert_eq!(stderr.lines().count(), 2, "{stderr}");
            } else {
                assert_eq!(out.stderr(), "");
            }
        }
    }
}

backend_tests! {
    fn process_parent(backend) {
        let out = run(backend, PROCESS_PARENT, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(out.stdout(), "child exitcode: Some(-15)\n");
        assert_eq!(
            out.stdout_of("Process-1:1"),
            lines(&[
                "parent Process-1 alive: true",
                "parent Process-1 alive: false"
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_joinhelp(backend) {
        let out = run(backend, PROCESS_JOINHELP, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "-- a join that times out",
                "after join(0.05): alive true exitcode None",
                "after join(30): alive false exitcode Some(0)",
                "-- a parent terminated while it joins",
                "middle exitcode Some(-15)",
                "Process-2:1 ran on; parent Process-2 alive: false",
                "-- a child never joined",
                "event set: true",
                "setter exitcode Some(0)",
                "-- children of joined children",
                "outer exitcode Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(out.stdout_of("Process-1"), "nap done\n", "{backend:?}");
        assert_eq!(out.stdout_of("Process-2"), "", "{backend:?}");
        assert_eq!(
            out.stdout_of("Process-4"),
            "outer: inner exitcode Some(0)\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-4:1"),
            "inner is Process-4:1\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_random(backend) {
        let out = run(backend, PROCESS_RANDOM, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            "distinct values from 9 processes: 9\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn process_stdin(backend) {
        let out = run(backend, PROCESS_STDIN, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(out.stdout(), "main read 0 bytes\nchild exitcode: Some(0)\n");
        assert_eq!(out.stdout_of("Process-1"), "child read 0 bytes\n");
    }
}

backend_tests! {
    fn process_errors(backend) {
        let out = run(backend, PROCESS_ERRORS, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "unknown target: error UnknownTarget: program process_errors.wasm has no target named 'no_such_target'",
                "name with NUL: error InvalidArgument: a process name may not contain a NUL character",
                "unknown handle start: error NotAChild: can only start a process object created by current process",
                "unknown handle join: error NotAChild: can only join a child process",
                "unknown handle is_alive: error NotAChild: can only test a child process",
                "unknown handle terminate: error NotAChild: can only terminate a child process",
                "unknown handle kill: error NotAChild: can only kill a child process",
                "unknown handle close: error NotAChild: can only close a child process",
                "unknown handle set_daemon: error NotAChild: can only set daemon on a child process",
                "unknown handle sentinel: error NotAChild: can only query a child process",
                "intruder exitcode: Some(0)",
                "victim still alive: true",
                "victim exitcode: Some(-15)",
            ]),
            "{backend:?}"
        );
        let intruder = out.stdout_of("Process-2");
        let wait_line = intruder
            .lines()
            .find(|l| l.starts_with("intruder wait: "))
            .expect("wait line")
            .to_string();
        assert!(
            wait_line.starts_with("intruder wait: error InvalidArgument: ")
                && wait_line.ends_with(" is not a sentinel of this process"),
            "{wait_line}"
        );
        assert_eq!(
            intruder.replace(&format!("{wait_line}\n"), ""),
            lines(&[
                "intruder start: error NotAChild: can only start a process object created by current process",
                "intruder join: error NotAChild: can only join a child process",
                "intruder is_alive: error NotAChild: can only test a child process",
                "intruder exitcode: error NotAChild: can only query a child process",
                "intruder terminate: error NotAChild: can only terminate a child process",
                "intruder kill: error NotAChild: can only kill a child process",
                "intruder close: error NotAChild: can only close a child process",
                "intruder name: error NotAChild: can only query a child process",
                "intruder guessed handles with effect: 0",
            ]),
            "{backend:?}"
        );
    }
}

backend_tests! {
    /// A target's return value reaches its parent once the child has ended with exit code
    /// 0, and only then; a value over `args` is not kept and fails the child.
    fn process_result(backend) {
        let out = run(backend, PROCESS_RESULT, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "unstarted square result: error InvalidState: process not started",
                "square exitcode: Some(0)",
                "square result: Some(49)",
                "square result again: Some(49)",
                "square result as String: error InvalidArgument: cannot decode the result of \
                 Process-1 as alloc::string::String: Hit the end of buffer, expected more data",
                "greet result: Some((\"hello ada\", 3))",
                "unit result: Some(())",
                "exits exitcode: Some(3)",
                "exits result: None",
                "panics exitcode: Some(1)",
                "panics result: None",
                "waits result while running: None",
                "waits result: Some(11)",
                "terminated exitcode: Some(-15)",
                "terminated result: None",
                "closed result: error Closed: process object is closed",
            ]),
            "{backend:?}"
        );
        let out = run_limited(backend, &[("args", "1KiB")], PROCESS_RESULT, &["big", "1000"]);
        assert_eq!(
            out.stdout(),
            lines(&["big exitcode: Some(0)", "big result: Some(1000)"]),
            "{backend:?}"
        );
        // 1,023 bytes and a two-byte length: one byte over.
        let out = run_limited(backend, &[("args", "1KiB")], PROCESS_RESULT, &["big", "1023"]);
        assert_eq!(
            out.stdout(),
            lines(&["big exitcode: Some(1)", "big result: None"]),
            "{backend:?}"
        );
        assert_eq!(
            out.stderr_of("big"),
            "Process big:\nthe result of target 'big' was not kept: a result of 1025 bytes \
             exceeds limit args = 1024 bytes\n",
            "{backend:?}"
        );
    }
}
