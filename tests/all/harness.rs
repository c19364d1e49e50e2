//! Runs guest programs on a shared host per backend and collects what they printed.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use wasmproc::{BackendKind, Config, ExitStatus, Host, MainRun, OutputMode, Program};

/// Declares tests that run on every backend: each
///
/// ```ignore
/// backend_tests! {
///     /// Docs and attributes (`#[ignore]`, ...) apply to each backend's test.
///     fn process_lifecycle(backend) {
///         let out = run(backend, PROCESS_LIFECYCLE, &[]);
///         ...
///     }
/// }
/// ```
///
/// becomes a module `process_lifecycle` (so `foreach_<suite>!(assert_test_exists)` finds
/// it) holding the body as a function of `backend: BackendKind` and one `#[test]` per
/// backend that calls it: `process_lifecycle::wasm`, `process_lifecycle::native`. The
/// backends are listed once, in this macro; the list is checked against `BackendKind` at
/// compile time (an exhaustive `match`), so a new backend that is not listed here does not
/// compile, and once listed it runs every test. The body sees the items and imports of
/// the file it is written in.
macro_rules! backend_tests {
    (@one [$($meta:tt)*] $test:ident $variant:ident) => {
        $($meta)*
        #[test]
        fn $test() {
            test_body(::wasmproc::BackendKind::$variant)
        }
    };
    (@each $meta:tt $($test:ident $variant:ident),*) => {
        $($crate::harness::backend_tests!(@one $meta $test $variant);)*
        // Does not compile when `BackendKind` has a backend this list lacks.
        const _: fn(::wasmproc::BackendKind) = |backend| match backend {
            $(::wasmproc::BackendKind::$variant => {})*
        };
    };
    ($($(#[$meta:meta])* fn $name:ident($backend:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn test_body($backend: ::wasmproc::BackendKind) $body

            $crate::harness::backend_tests!(@each [$(#[$meta])*] wasm Wasm, native Native);
        }
    )*};
}
pub(crate) use backend_tests;

/// A run must end within this time, or the test fails instead of hanging.
const RUN_LIMIT: Duration = Duration::from_secs(120);

struct Shared {
    host: Host,
    programs: Mutex<HashMap<String, Program>>,
}

fn new_shared(backend: BackendKind) -> Shared {
    Shared {
        host: Host::new(Config {
            backend,
            output: OutputMode::Capture,
            // Native children run the wasmproc binary cargo built for these tests.
            native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
            ..Config::default()
        })
        .expect("failed to create the test host"),
        programs: Mutex::new(HashMap::new()),
    }
}

static WASM: LazyLock<Shared> = LazyLock::new(|| new_shared(BackendKind::Wasm));
static NATIVE: LazyLock<Shared> = LazyLock::new(|| new_shared(BackendKind::Native));

fn shared(backend: BackendKind) -> &'static Shared {
    match backend {
        BackendKind::Wasm => &WASM,
        BackendKind::Native => &NATIVE,
    }
}

/// The shared host of `backend`.
pub fn host(backend: BackendKind) -> &'static Host {
    &shared(backend).host
}

/// `path` loaded (compiled once per host).
pub fn program(backend: BackendKind, path: &str) -> Program {
    let shared = shared(backend);
    let mut programs = shared.programs.lock().unwrap();
    programs
        .entry(path.to_string())
        .or_insert_with(|| {
            shared
                .host
                .load(path)
                .unwrap_or_else(|e| panic!("cannot load {path}: {e}"))
        })
        .clone()
}

/// What one run of a program's main process left behind.
pub struct Outcome {
    pub status: ExitStatus,
    pub run: MainRun,
}

impl Outcome {
    /// What the process named `name` wrote to stdout.
    pub fn stdout_of(&self, name: &str) -> String {
        let p = self
            .run
            .process(name)
            .unwrap_or_else(|| panic!("no process named {name} in {:?}", self.names()));
        String::from_utf8(p.stdout()).expect("utf-8 stdout")
    }

    /// What the process named `name` wrote to stderr.
    pub fn stderr_of(&self, name: &str) -> String {
        let p = self
            .run
            .process(name)
            .unwrap_or_else(|| panic!("no process named {name} in {:?}", self.names()));
        String::from_utf8(p.stderr()).expect("utf-8 stderr")
    }

    /// The main process's stdout.
    pub fn stdout(&self) -> String {
        self.stdout_of("MainProcess")
    }

    /// The main process's stderr.
    pub fn stderr(&self) -> String {
        self.stderr_of("MainProcess")
    }

    /// The names of the processes of the run, in start order (main first).
    pub fn names(&self) -> Vec<String> {
        self.run
            .processes
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }
}

/// Runs `path`'s main process with `args` under `backend` and returns what happened.
pub fn run(backend: BackendKind, path: &str, args: &[&str]) -> Outcome {
    let program = program(backend, path);
    run_within_limit(path, args, move |args| {
        host(backend).run_main(&program, args)
    })
}

/// Runs `run_main` on a thread of its own; fails the test if it has not ended within
/// [`RUN_LIMIT`] instead of hanging.
fn run_within_limit(
    path: &str,
    args: &[&str],
    run_main: impl FnOnce(&[String]) -> Result<MainRun, wasmproc::Error> + Send + 'static,
) -> Outcome {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let run = run_main(&args).expect("the run could not start");
        let _ = tx.send(run);
    });
    let run = rx
        .recv_timeout(RUN_LIMIT)
        .unwrap_or_else(|_| panic!("{path} did not end within {RUN_LIMIT:?}"));
    Outcome {
        status: run.status,
        run,
    }
}

/// Runs `path` on a host of its own whose limits are the defaults with `limits` applied
/// (`("memory", "64MiB")`, ...).
pub fn run_limited(
    backend: BackendKind,
    limits: &[(&str, &str)],
    path: &str,
    args: &[&str],
) -> Outcome {
    run_with(
        backend,
        |config| {
            for (key, value) in limits {
                config.limits.set(key, value).expect("a valid limit");
            }
        },
        path,
        args,
    )
}

/// Runs `path` (no arguments) on a host of its own configured by `configure`.
pub fn run_configured(
    backend: BackendKind,
    configure: impl FnOnce(&mut Config),
    path: &str,
) -> Outcome {
    run_with(backend, configure, path, &[])
}

fn run_with(
    backend: BackendKind,
    configure: impl FnOnce(&mut Config),
    path: &str,
    args: &[&str],
) -> Outcome {
    let mut config = Config {
        backend,
        output: OutputMode::Capture,
        native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
        ..Config::default()
    };
    configure(&mut config);
    let host = Host::new(config).expect("host");
    let program = host.load(path).expect("program");
    run_within_limit(path, args, move |args| host.run_main(&program, args))
}

/// Joins lines with newlines, each line ended by one.
pub fn lines(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// What the demo (`tests/programs/src/bin/demo.rs`) prints on stdout under the wasm
/// backend, whose pids are the run's own (main is 1): as the README shows it.
pub const DEMO_OUTPUT: &str = "Process-1  pid=2   exitcode=0\nProcess-2  pid=3   exitcode=3\n\
                               Process-3  pid=4   exitcode=1\nProcess-4  pid=5   exitcode=-15\n\
                               Process-5  pid=6   exitcode=-9\n";

/// Asserts that `stdout` is what the demo prints under `backend`: [`DEMO_OUTPUT`] exactly
/// under wasm; under native the same lines, formatted as the demo formats them, with the
/// children's OS pids, which are five distinct pids other than this test's (and none of the
/// virtual 1-6).
pub fn assert_demo_output(backend: BackendKind, stdout: &str) {
    match backend {
        BackendKind::Wasm => assert_eq!(stdout, DEMO_OUTPUT, "{backend:?}"),
        BackendKind::Native => {
            let pids: Vec<u32> = stdout
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("pid=")?.parse().ok())
                .collect();
            assert_eq!(pids.len(), 5, "{backend:?}: {stdout}");
            assert!(
                pids.iter().all(|&p| p > 6 && p != std::process::id()),
                "{backend:?}: {pids:?}"
            );
            let mut distinct = pids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 5, "{backend:?}: {pids:?}");
            let expected: String = DEMO_OUTPUT
                .lines()
                .zip(&pids)
                .map(|(line, pid)| {
                    let mut words = line.split_whitespace();
                    let (name, code) = (words.next().unwrap(), words.nth(1).unwrap());
                    // The demo's format: "{name:<10} pid={pid:<3} exitcode={code}".
                    format!("{name:<10} pid={pid:<3} {code}\n")
                })
                .collect();
            assert_eq!(stdout, expected, "{backend:?}");
        }
    }
}
