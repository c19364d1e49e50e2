//! Fuzzing the host's process API (proptest): random sequences of create, start, join,
//! terminate, kill, close, wait, ... with random arguments, driven two ways, under both
//! backends:
//! - from inside a guest (`fuzz_ops`): the guest program `tests/programs/src/bin/fuzz_ops.rs`
//!   decodes the operations from argv[1] and runs them through the `wasmproc_guest` API, so
//!   every call crosses the WIT boundary. Handles may be its own objects, their neighbours,
//!   raw guesses, itself or its parent; an operation may also start a child that runs
//!   operations of its own (two levels deep, so that orphans happen too);
//! - from Rust (`host_ops`): the same kinds of sequences against `wasmproc::Host::process`
//!   and `wasmproc::Process`, including four threads racing on one object.
//!
//! Errors are expected. What must hold: the run ends, main exits with 0 and prints `done`,
//! the host never panics (a panic on one of the host's `wasmproc-*` threads is counted, see
//! [`host_panics`]), and the invariants both drivers check (the guest prints a `VIOLATION`
//! line): an ended process is not alive and has an exit code its target can produce; after
//! `join(None)` the exit code is known; a pid never changes; names and daemon flags read back
//! as set; a closed object answers `closed`; a handle that is not the caller's has no
//! effect; `wait` returns a subsequence of what it was given, and only ended processes;
//! `active_children` lists only the caller's running children, in start order.
//!
//! Each driver is one test per backend, with cases of its own. The default run is short,
//! for CI: 64 guest-side and 128 host-side cases per backend, about five seconds in a
//! release build. A long session:
//!
//! ```sh
//! PROPTEST_CASES=5000 cargo test --release -p wasmproc --test all fuzz
//! ```
//!
//! `PROPTEST_CASES` sets the case count of both drivers (5000 take about three minutes on
//! two cores); `WASMPROC_FUZZ_SHOW=1` (with `-- --nocapture`) prints what every process of
//! every `fuzz_ops` case printed. Failing cases are shrunk and their seeds appended to
//! `tests/all/fuzz.proptest-regressions`, which is committed: every later run replays them
//! first. The seed corpus — fixed sequences worth keeping — are the `seed_*` tests at the
//! end of this file; `host_dropped_first` keeps a fixed host bug fixed.

use crate::harness::{Outcome, backend_tests, host, program, run};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wasmproc::{BackendKind, ErrorKind, ExitStatus};
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_fuzz!(assert_test_exists);

/// Where failing cases are kept (next to this file, whatever the working directory).
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/all/fuzz.proptest-regressions"
);

/// `cases`, unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        // Each case runs processes: keep shrinking bounded.
        max_shrink_iters: 256,
        ..default
    }
}

// ---------------------------------------------------------------------------------------
// Host panics

static HOST_PANICS: AtomicUsize = AtomicUsize::new(0);

/// How many panics happened so far on the host's own threads (`wasmproc-worker`,
/// `wasmproc-epoch`, ...). A panic there is caught by tokio and might otherwise go
/// unnoticed.
fn host_panics() -> usize {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("wasmproc"))
            {
                HOST_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    HOST_PANICS.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------
// The operations, and their text form for `fuzz_ops`

/// A handle, as the guest names it.
#[derive(Debug, Clone)]
enum Ref {
    /// The N-th object created (modulo the count).
    Slot(u8),
    /// The last object created.
    Last,
    /// The N-th object's handle plus a small offset: a neighbour.
    Near(u8, i8),
    /// A raw value.
    Raw(u64),
    /// The calling process itself.
    Current,
    /// Its parent (none in main: raw 0).
    Parent,
}

/// The arguments of a create.
#[derive(Debug, Clone)]
enum Args {
    None,
    /// The target's own argument (an exit code, a depth).
    Proper(i64),
    /// `len` pseudo-random bytes from `seed`.
    Random {
        len: u32,
        seed: u64,
    },
}

/// What `wait` waits on.
#[derive(Debug, Clone)]
enum WaitOn {
    /// The N-th sentinel obtained so far (modulo the count).
    Obtained(u8),
    /// A handle's raw value, as if it were a sentinel.
    Handle(Ref),
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        target: String,
        name: Option<String>,
        daemon: Option<bool>,
        args: Args,
    },
    Start(Ref),
    /// Join with no timeout (`None`), this many ms, or (255) the largest timeout there is.
    Join(Ref, Option<u8>),
    IsAlive(Ref),
    Exitcode(Ref),
    Pid(Ref),
    Name(Ref),
    SetName(Ref, String),
    Daemon(Ref),
    SetDaemon(Ref, bool),
    Terminate(Ref),
    Kill(Ref),
    Close(Ref),
    Sentinel(Ref),
    /// Wait with this many ms on these.
    Wait(u8, Vec<WaitOn>),
    ActiveChildren,
    /// Drop a `Process` for the handle (one `release`).
    Release(Ref),
    /// parent_process, current_process, cpu_count, authkey.
    Info,
    /// Create a child that runs these operations itself (where `Parent` is real).
    Child(Option<bool>, Vec<Op>),
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

impl Ref {
    fn encode(&self) -> String {
        match self {
            Ref::Slot(n) => format!("s{n}"),
            Ref::Last => "l".into(),
            Ref::Near(n, d) => format!("o{n}_{d}"),
            Ref::Raw(h) => format!("r{h}"),
            Ref::Current => "c".into(),
            Ref::Parent => "p".into(),
        }
    }
}

impl Op {
    fn encode(&self) -> String {
        match self {
            Op::Create {
                target,
                name,
                daemon,
                args,
            } => {
                let name = name
                    .as_deref()
                    .map_or("-".into(), |n| format!("x{}", hex(n)));
                let daemon = match daemon {
                    None => "-",
                    Some(false) => "0",
                    Some(true) => "1",
                };
                let args = match args {
                    Args::None => "e".into(),
                    Args::Proper(n) => format!("p{n}"),
                    Args::Random { len, seed } => format!("z{len}_{seed}"),
                };
                format!("C,{},{name},{daemon},{args}", hex(target))
            }
            Op::Start(r) => format!("S,{}", r.encode()),
            Op::Join(r, t) => format!(
                "J,{},{}",
                r.encode(),
                match t {
                    None => "-".into(),
                    Some(255) => "max".into(),
                    Some(ms) => ms.to_string(),
                }
            ),
            Op::IsAlive(r) => format!("A,{}", r.encode()),
            Op::Exitcode(r) => format!("E,{}", r.encode()),
            Op::Pid(r) => format!("P,{}", r.encode()),
            Op::Name(r) => format!("N,{}", r.encode()),
            Op::SetName(r, n) => format!("M,{},{}", r.encode(), hex(n)),
            Op::Daemon(r) => format!("D,{}", r.encode()),
            Op::SetDaemon(r, d) => format!("d,{},{}", r.encode(), u8::from(*d)),
            Op::Terminate(r) => format!("T,{}", r.encode()),
            Op::Kill(r) => format!("K,{}", r.encode()),
            Op::Close(r) => format!("X,{}", r.encode()),
            Op::Sentinel(r) => format!("Z,{}", r.encode()),
            Op::Wait(ms, on) => {
                let mut s = format!("W,{ms}");
                for w in on {
                    s.push(',');
                    match w {
                        WaitOn::Obtained(n) => s.push_str(&format!("q{n}")),
                        WaitOn::Handle(r) => s.push_str(&r.encode()),
                    }
                }
                s
            }
            Op::ActiveChildren => "L".into(),
            Op::Release(r) => format!("R,{}", r.encode()),
            Op::Info => "Y".into(),
            Op::Child(daemon, ops) => {
                let daemon = match daemon {
                    None => "-",
                    Some(false) => "0",
                    Some(true) => "1",
                };
                format!("F,{},{daemon}", hex(&encode(ops)))
            }
        }
    }
}

/// The argv[1] of `fuzz_ops` for `ops`.
fn encode(ops: &[Op]) -> String {
    ops.iter().map(Op::encode).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// Strategies

/// The targets of `fuzz_ops`.
const TARGETS: &[&str] = &[
    "noop",
    "nap",
    "sleep_long",
    "panics",
    "exits",
    "spawner",
    "fuzz_child",
];

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(TARGETS).prop_map(str::to_string),
        1 => prop::sample::select(&["", "nope", "noop\0", "NOOP", "noop ", "spawner::x"][..])
            .prop_map(str::to_string),
        1 => "\\PC{0,12}",
    ]
}

fn name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => Just(Some(String::new())),
        1 => Just(Some("a\0b".to_string())),
        1 => Just(Some("\0".to_string())),
        1 => Just(Some("x".repeat(1000))),
        1 => Just(Some("näme ✓ Process-1".to_string())),
        2 => "\\PC{0,16}".prop_map(Some),
    ]
}

fn daemon() -> impl Strategy<Value = Option<bool>> {
    prop_oneof![2 => Just(None), 1 => Just(Some(false)), 1 => Just(Some(true))]
}

fn args() -> impl Strategy<Value = Args> {
    prop_oneof![
        2 => Just(Args::None),
        4 => prop_oneof![-300i64..300, 0i64..8, any::<i32>().prop_map(i64::from)]
            .prop_map(Args::Proper),
        2 => (0u32..16, any::<u64>()).prop_map(|(len, seed)| Args::Random { len, seed }),
        1 => (0u32..=65536, any::<u64>()).prop_map(|(len, seed)| Args::Random { len, seed }),
    ]
}

fn raw() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        0u64..300,
        any::<u64>(),
        // Near the handles a host hands out (pid << 24, see host/src/lib.rs).
        (1u64..4_000_000, 0u64..64).prop_map(|(pid, n)| (pid << 24) + n),
    ]
}

fn reference() -> impl Strategy<Value = Ref> {
    prop_oneof![
        12 => any::<u8>().prop_map(Ref::Slot),
        4 => Just(Ref::Last),
        2 => (any::<u8>(), -3i8..=3).prop_map(|(n, d)| Ref::Near(n, d)),
        2 => raw().prop_map(Ref::Raw),
        1 => Just(Ref::Current),
        1 => Just(Ref::Parent),
    ]
}

fn ms() -> impl Strategy<Value = u8> {
    prop::sample::select(&[0u8, 1, 5, 20][..])
}

/// A join timeout: mostly none (forever), else a few ms or (255) the largest there is.
fn join_timeout() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        7 => Just(None),
        3 => ms().prop_map(Some),
        1 => Just(Some(255)),
    ]
}

fn create_op() -> impl Strategy<Value = Op> {
    (target(), name(), daemon(), args()).prop_map(|(target, name, daemon, args)| Op::Create {
        target,
        name,
        daemon,
        args,
    })
}

/// A few creates (so that later ops find objects), then anything, including children that
/// run operations of their own.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    // Two levels: a child's child may be orphaned when main terminates its parent.
    fn child(ops: impl Strategy<Value = Vec<Op>>) -> impl Strategy<Value = Op> {
        (daemon(), ops).prop_map(|(d, ops)| Op::Child(d, ops))
    }
    let mid = prop_oneof![
        8 => op().boxed(),
        1 => child(prop::collection::vec(op(), 0..8)).boxed(),
    ];
    let op = prop_oneof![
        12 => op().boxed(),
        1 => child(prop::collection::vec(mid, 0..12)).boxed(),
    ];
    (
        prop::collection::vec(create_op(), 0..5),
        prop::collection::vec(op, 0..30),
    )
        .prop_map(|(mut ops, more)| {
            ops.extend(more);
            ops
        })
}

fn op() -> impl Strategy<Value = Op> {
    let r = reference;
    prop_oneof![
        6 => create_op(),
        5 => r().prop_map(Op::Start),
        3 => (r(), join_timeout()).prop_map(|(r, t)| Op::Join(r, t)),
        1 => r().prop_map(Op::IsAlive),
        1 => r().prop_map(Op::Exitcode),
        1 => r().prop_map(Op::Pid),
        1 => r().prop_map(Op::Name),
        1 => (r(), name().prop_map(Option::unwrap_or_default)).prop_map(|(r, n)| Op::SetName(r, n)),
        1 => r().prop_map(Op::Daemon),
        1 => (r(), any::<bool>()).prop_map(|(r, d)| Op::SetDaemon(r, d)),
        2 => r().prop_map(Op::Terminate),
        2 => r().prop_map(Op::Kill),
        2 => r().prop_map(Op::Close),
        2 => r().prop_map(Op::Sentinel),
        2 => (
            ms(),
            prop::collection::vec(
                prop_oneof![
                    3 => any::<u8>().prop_map(WaitOn::Obtained),
                    1 => r().prop_map(WaitOn::Handle),
                ],
                0..4,
            ),
        )
            .prop_map(|(ms, on)| Op::Wait(ms, on)),
        1 => Just(Op::ActiveChildren),
        1 => r().prop_map(Op::Release),
        1 => Just(Op::Info),
    ]
}

// ---------------------------------------------------------------------------------------
// The guest-side driver

/// Runs `ops` in `fuzz_ops` under `backend` and checks what must always hold.
fn run_ops(backend: BackendKind, ops: &[Op]) -> Outcome {
    let arg = encode(ops);
    let panics = host_panics();
    let out = run(backend, FUZZ_OPS, &[&arg]);
    let stdout = out.stdout();
    let ctx = || format!("{backend:?}, ops: {ops:?}\nargv[1]: {arg}\nstdout:\n{stdout}");
    if std::env::var_os("WASMPROC_FUZZ_SHOW").is_some() {
        for name in out.names() {
            let printed = out.stdout_of(&name);
            if !printed.is_empty() {
                eprintln!("---- {backend:?} {name}\n{printed}");
            }
        }
    }
    assert_eq!(
        out.status,
        ExitStatus::SUCCESS,
        "{}\nstderr:\n{}",
        ctx(),
        out.stderr()
    );
    assert!(stdout.ends_with("violations 0\ndone\n"), "{}", ctx());
    for name in out.names() {
        let printed = out.stdout_of(&name);
        assert!(
            !printed.contains("VIOLATION"),
            "{name} printed:\n{printed}\n{}",
            ctx()
        );
    }
    assert_eq!(out.stderr(), "", "{}", ctx());
    assert_eq!(
        stdout
            .lines()
            .filter(|l| !l.starts_with("VIOLATION"))
            .count(),
        ops.len() + 2,
        "one line per op: {}",
        ctx()
    );
    assert_eq!(host_panics(), panics, "the host panicked: {}", ctx());
    // A process of the run that panicked or failed to decode its arguments says so on its
    // own stderr; any other stderr output is the host's.
    for name in out.names().iter().skip(1) {
        let err = out.stderr_of(name);
        assert!(
            err.is_empty() || err.starts_with("Process "),
            "{backend:?} {name} wrote {err:?}; {}",
            ctx()
        );
    }
    out
}

backend_tests! {
    fn fuzz_ops(backend) {
        proptest!(config(64), |(ops in ops())| {
            run_ops(backend, &ops);
        });
    }
}

// ---------------------------------------------------------------------------------------
// The host-side driver

#[derive(Debug, Clone)]
enum HostOp {
    Create {
        target: String,
        name: Option<String>,
        daemon: Option<bool>,
        args: Args,
        /// `ProcessBuilder::start` instead of `create`.
        start: bool,
    },
    Start(u8),
    Join(u8, Option<u8>),
    IsAlive(u8),
    Exitcode(u8),
    Status(u8),
    Pid(u8),
    Name(u8),
    Daemon(u8),
    Terminate(u8),
    Kill(u8),
    Close(u8),
    Output(u8),
    /// From four threads at once: join (5 ms), terminate, close and is_alive.
    Race(u8),
    Drop(u8),
}

fn host_create() -> impl Strategy<Value = HostOp> {
    (target(), name(), daemon(), args(), any::<bool>()).prop_map(
        |(target, name, daemon, args, start)| HostOp::Create {
            target,
            name,
            daemon,
            args,
            start,
        },
    )
}

/// A few creates, then anything.
fn host_ops_strategy() -> impl Strategy<Value = Vec<HostOp>> {
    (
        prop::collection::vec(host_create(), 0..5),
        prop::collection::vec(host_op(), 0..30),
    )
        .prop_map(|(mut ops, more)| {
            ops.extend(more);
            ops
        })
}

fn host_op() -> impl Strategy<Value = HostOp> {
    let i = any::<u8>;
    prop_oneof![
        6 => host_create(),
        4 => i().prop_map(HostOp::Start),
        3 => (i(), join_timeout()).prop_map(|(p, t)| HostOp::Join(p, t)),
        1 => i().prop_map(HostOp::IsAlive),
        1 => i().prop_map(HostOp::Exitcode),
        1 => i().prop_map(HostOp::Status),
        1 => i().prop_map(HostOp::Pid),
        1 => i().prop_map(HostOp::Name),
        1 => i().prop_map(HostOp::Daemon),
        2 => i().prop_map(HostOp::Terminate),
        2 => i().prop_map(HostOp::Kill),
        2 => i().prop_map(HostOp::Close),
        1 => i().prop_map(HostOp::Output),
        1 => i().prop_map(HostOp::Race),
        1 => i().prop_map(HostOp::Drop),
    ]
}

/// The bytes `Args::Random` stands for (the same generator as the guest's).
fn random_bytes(len: u32, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A process object the host-side driver made, and what it knows about it.
struct Tracked {
    p: wasmproc::Process,
    target: String,
    /// The exit code `exits` was given, when its arguments were well-formed.
    code: Option<i32>,
    /// Whether the arguments might not decode.
    odd_args: bool,
    daemon: bool,
    name: String,
    started: bool,
    signalled: bool,
    closed: bool,
    pid: Option<u64>,
}

impl Tracked {
    fn allowed(&self, code: i32) -> bool {
        if code == -15 || code == -9 {
            return true;
        }
        match self.target.as_str() {
            "noop" | "nap" | "sleep_long" => code == 0,
            "panics" => code == 1,
            "exits" => self
                .code
                .map_or((0..=255).contains(&code), |n| code == n & 0xff),
            "spawner" | "fuzz_child" => code == 0 || (self.odd_args && code == 1),
            _ => false,
        }
    }

    /// The invariants of any object at any time; returns what is wrong.
    fn check(&mut self) -> Vec<String> {
        let p = &self.p;
        let (exitcode, alive, status, pid, name, daemon) = (
            p.exitcode(),
            p.is_alive(),
            p.status(),
            p.pid(),
            p.name(),
            p.daemon(),
        );
        let mut bad = Vec::new();
        if self.closed {
            let closed = |r: Result<(), wasmproc::ProcessError>| matches!(r, Err(e) if e.kind == ErrorKind::Closed);
            if !(closed(exitcode.map(drop))
                && closed(alive.map(drop))
                && closed(name.map(drop))
                && closed(p.start())
                && closed(p.terminate()))
            {
                bad.push("a closed object did not answer `closed`".to_string());
            }
            return bad;
        }
        let (Ok(exitcode), Ok(alive), Ok(status), Ok(pid), Ok(name), Ok(daemon)) =
            (exitcode, alive, status, pid, name, daemon)
        else {
            return vec!["a query of an open object failed".to_string()];
        };
        if let Some(code) = exitcode {
            if alive {
                bad.push(format!("alive with exitcode {code}"));
            }
            if !self.allowed(code) {
                bad.push(format!("{} ended with {code}", self.target));
            }
            if !self.started {
                bad.push(format!("exitcode {code} but never started"));
            }
        } else if alive && !self.started {
            bad.push("alive before start".to_string());
        }
        // `status` is read after `exitcode`: it may have ended in between, not the reverse.
        if let (Some(code), s) = (exitcode, status)
            && s.map(ExitStatus::exitcode) != Some(code)
        {
            bad.push(format!("exitcode {code} but status {s:?}"));
        }
        match (pid, self.pid) {
            (Some(now), Some(before)) if now != before => {
                bad.push(format!("pid changed from {before} to {now}"))
            }
            (None, _) if self.started => bad.push("started without a pid".to_string()),
            (Some(p), _) if !self.started => bad.push(format!("unstarted with pid {p}")),
            _ => {}
        }
        self.pid = self.pid.or(pid);
        if name != self.name {
            bad.push(format!("name {name:?}, expected {:?}", self.name));
        }
        if daemon != self.daemon {
            bad.push(format!("daemon {daemon}, expected {}", self.daemon));
        }
        bad
    }
}

fn is_closed<T>(r: &Result<T, wasmproc::ProcessError>) -> bool {
    matches!(r, Err(e) if e.kind == ErrorKind::Closed)
}

/// [`run_host_ops`], failing instead of hanging.
fn run_host_ops_guarded(backend: BackendKind, ops: &[HostOp]) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = ops.to_vec();
    std::thread::spawn(move || {
        let _ = tx.send(run_host_ops(backend, &owned));
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(bad) => bad,
        Err(e) => panic!("{backend:?}: the ops panicked or hung ({e}): {ops:?}"),
    }
}

/// Runs `ops` against the library API of `backend`'s shared host; returns the violations.
fn run_host_ops(backend: BackendKind, ops: &[HostOp]) -> Vec<String> {
    let host = host(backend);
    let program = program(backend, FUZZ_OPS);
    let mut pool: Vec<Tracked> = Vec::new();
    let mut bad = Vec::new();
    let pick = |pool: &[Tracked], i: u8| (!pool.is_empty()).then(|| usize::from(i) % pool.len());
    for (n, op) in ops.iter().enumerate() {
        let mut note = |what: String| bad.push(format!("op {n} {op:?}: {what}"));
        match op {
            HostOp::Create {
                target,
                name,
                daemon,
                args,
                start,
            } => {
                let (bytes, code, odd_args) = match args {
                    Args::None => (Vec::new(), None, true),
                    Args::Proper(v) => match target.as_str() {
                        "exits" => (
                            postcard::to_allocvec(&(*v as i32)).unwrap(),
                            Some(*v as i32),
                            false,
                        ),
                        "spawner" => (postcard::to_allocvec(&(*v as u32)).unwrap(), None, false),
                        "fuzz_child" => (postcard::to_allocvec("").unwrap(), None, false),
                        _ => (Vec::new(), None, false),
                    },
                    Args::Random { len, seed } => (random_bytes(*len, *seed), None, true),
                };
                let mut b = host.process(&program, target).args(bytes);
                if let Some(name) = name {
                    b = b.name(name);
                }
                if let Some(d) = daemon {
                    b = b.daemon(*d);
                }
                let r = if *start { b.start() } else { b.create() };
                let known = TARGETS.contains(&target.as_str());
                let nul = name.as_ref().is_some_and(|n| n.contains('\0'));
                match r {
                    Ok(p) => {
                        if !known || nul {
                            note(format!("create succeeded: {p:?}"));
                        }
                        let actual = p.name().unwrap_or_default();
                        let expected = name.clone().unwrap_or_else(|| actual.clone());
                        if name.is_none() && !actual.starts_with("Process-") {
                            note(format!("default name {actual:?}"));
                        }
                        let mut t = Tracked {
                            p,
                            target: target.clone(),
                            code,
                            odd_args,
                            daemon: daemon.unwrap_or(false),
                            name: expected,
                            started: *start,
                            signalled: false,
                            closed: false,
                            pid: None,
                        };
                        t.check().into_iter().for_each(&mut note);
                        pool.push(t);
                    }
                    Err(wasmproc::Error::Process(e)) => {
                        let expected = if !known {
                            ErrorKind::UnknownTarget
                        } else if nul {
                            ErrorKind::InvalidArgument
                        } else {
                            // Only a start (of a started create) may fail for other reasons.
                            ErrorKind::HostFailure
                        };
                        if e.kind != expected {
                            note(format!("create failed: {e:?}"));
                        }
                    }
                    Err(e) => note(format!("create failed: {e}")),
                }
            }
            HostOp::Drop(i) => {
                if let Some(i) = pick(&pool, *i) {
                    let t = pool.remove(i);
                    // A long sleeper nobody can name any more would run on: end it first.
                    if t.target == "sleep_long" && !t.closed {
                        let _ = t.p.kill();
                    }
                    drop(t);
                }
            }
            op => {
                let i = match op {
                    HostOp::Start(i)
                    | HostOp::Join(i, _)
                    | HostOp::IsAlive(i)
                    | HostOp::Exitcode(i)
                    | HostOp::Status(i)
                    | HostOp::Pid(i)
                    | HostOp::Name(i)
                    | HostOp::Daemon(i)
                    | HostOp::Terminate(i)
                    | HostOp::Kill(i)
                    | HostOp::Close(i)
                    | HostOp::Output(i)
                    | HostOp::Race(i) => *i,
                    HostOp::Create { .. } | HostOp::Drop(_) => unreachable!(),
                };
                let Some(i) = pick(&pool, i) else { continue };
                let t = &mut pool[i];
                match op {
                    HostOp::Start(_) => {
                        let r = t.p.start();
                        match (&r, t.closed, t.started) {
                            (r, true, _) if !is_closed(r) => note(format!("start closed: {r:?}")),
                            (Ok(()), false, true) => note("started twice".to_string()),
                            (Err(e), false, true) if e.kind != ErrorKind::InvalidState => {
                                note(format!("start again: {e:?}"))
                            }
                            (Err(e), false, false) if e.kind != ErrorKind::HostFailure => {
                                note(format!("start: {e:?}"))
                            }
                            _ => {}
                        }
                        t.started |= r.is_ok();
                    }
                    HostOp::Join(_, ms) => {
                        let hang = t.target == "sleep_long" && !t.signalled;
                        let timeout = match ms {
                            None | Some(255) if hang => Some(Duration::from_millis(5)),
                            None => None,
                            Some(255) => Some(Duration::MAX),
                            Some(ms) => Some(Duration::from_millis(u64::from(*ms))),
                        };
                        let r = t.p.join(timeout);
                        match (&r, t.closed, t.started) {
                            (r, true, _) if !is_closed(r) => note(format!("join closed: {r:?}")),
                            (Ok(()), false, false) => note("joined an unstarted one".to_string()),
                            (Err(e), false, true) => note(format!("join: {e:?}")),
                            (Ok(()), false, true)
                                if timeout.is_none_or(|t| t == Duration::MAX)
                                    && (t.p.exitcode().ok().flatten().is_none()
                                        || t.p.is_alive() != Ok(false)) =>
                            {
                                note("no exit code after join(None)".to_string());
                            }
                            _ => {}
                        }
                    }
                    HostOp::IsAlive(_) => drop(t.p.is_alive()),
                    HostOp::Exitcode(_) => drop(t.p.exitcode()),
                    HostOp::Status(_) => drop(t.p.status()),
                    HostOp::Pid(_) => drop(t.p.pid()),
                    HostOp::Name(_) => drop(t.p.name()),
                    HostOp::Daemon(_) => drop(t.p.daemon()),
                    HostOp::Terminate(_) | HostOp::Kill(_) => {
                        let r = if matches!(op, HostOp::Terminate(_)) {
                            t.p.terminate()
                        } else {
                            t.p.kill()
                        };
                        match (&r, t.closed, t.started) {
                            (r, true, _) if !is_closed(r) => note(format!("signal closed: {r:?}")),
                            (Ok(()), false, false) => {
                                note("signalled an unstarted one".to_string())
                            }
                            (Err(e), false, true) => note(format!("signal: {e:?}")),
                            _ => {}
                        }
                        t.signalled |= r.is_ok();
                    }
                    HostOp::Close(_) => {
                        let r = t.p.close();
                        match (&r, t.closed) {
                            (Err(e), true) => note(format!("close twice: {e:?}")),
                            (Err(e), false)
                                if !(e.kind == ErrorKind::InvalidState && t.started) =>
                            {
                                note(format!("close: {e:?}"))
                            }
                            _ => {}
                        }
                        t.closed |= r.is_ok();
                    }
                    HostOp::Race(_) => {
                        let p = &t.p;
                        let (join, term, close, alive) = std::thread::scope(|s| {
                            let join = s.spawn(|| p.join(Some(Duration::from_millis(5))));
                            let term = s.spawn(|| p.terminate());
                            let close = s.spawn(|| p.close());
                            let alive = s.spawn(|| p.is_alive());
                            (
                                join.join().unwrap(),
                                term.join().unwrap(),
                                close.join().unwrap(),
                                alive.join().unwrap(),
                            )
                        });
                        if t.closed && !(is_closed(&join) && is_closed(&term) && is_closed(&alive))
                        {
                            note(format!("race on closed: {join:?} {term:?} {alive:?}"));
                        }
                        if !t.closed && close.is_err() && !t.started {
                            note(format!("close of an unstarted one: {close:?}"));
                        }
                        t.signalled |= term.is_ok();
                        t.closed |= close.is_ok();
                    }
                    HostOp::Output(_) => {
                        let (out, err) = (t.p.stdout(), t.p.stderr());
                        if t.closed != (is_closed(&out) && is_closed(&err)) {
                            note(format!("output: {out:?} {err:?}"));
                        }
                    }
                    HostOp::Create { .. } | HostOp::Drop(_) => unreachable!(),
                }
                t.check().into_iter().for_each(&mut note);
            }
        }
    }
    // End everything, so that nothing of this case outlives it.
    for t in &pool {
        let _ = t.p.kill();
    }
    for (i, t) in pool.iter_mut().enumerate() {
        if t.started && !t.closed {
            if t.p.join(Some(Duration::from_secs(30))).is_err() || t.p.is_alive() != Ok(false) {
                bad.push(format!("object {i} did not end 30 s after kill"));
            }
            t.signalled = true;
            bad.extend(
                t.check()
                    .into_iter()
                    .map(|b| format!("object {i} at the end: {b}")),
            );
        }
    }
    bad
}

backend_tests! {
    fn host_ops(backend) {
        proptest!(config(128), |(ops in host_ops_strategy())| {
            let panics = host_panics();
            let bad = run_host_ops_guarded(backend, &ops);
            prop_assert!(bad.is_empty(), "{:?}: {:#?}", backend, bad);
            prop_assert_eq!(host_panics(), panics, "the host panicked under {:?}", backend);
        });
    }
}

// ---------------------------------------------------------------------------------------
// The seed corpus: fixed sequences worth running every time.

use Op::*;
use Ref::{Current, Last, Near, Parent, Raw, Slot};

fn create(target: &str) -> Op {
    Create {
        target: target.into(),
        name: None,
        daemon: None,
        args: Args::None,
    }
}

fn create_with(target: &str, args: Args) -> Op {
    Create {
        target: target.into(),
        name: None,
        daemon: None,
        args,
    }
}

/// Checks each op's output line in `stdout` against `expected` (`None`: any).
fn check_lines(what: &str, stdout: &str, ops: &[Op], expected: &[Option<&str>]) {
    assert_eq!(ops.len(), expected.len());
    let results: Vec<&str> = stdout
        .lines()
        .take(ops.len())
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(results.len(), ops.len(), "{what}\n{stdout}");
    for (i, (got, want)) in results.iter().zip(expected).enumerate() {
        if let Some(want) = want {
            assert_eq!(got, want, "{what} op {i} {:?}\n{stdout}", ops[i]);
        }
    }
}

/// Runs `ops` under `backend` and checks each op's output line against `expected`
/// (`None`: any).
fn seed(backend: BackendKind, ops: &[Op], expected: &[Option<&str>]) -> Outcome {
    let out = run_ops(backend, ops);
    check_lines(&format!("{backend:?}"), &out.stdout(), ops, expected);
    out
}

backend_tests! {
    fn seed_close_then_everything(backend) {
        let s = || Slot(0);
        seed(
            backend,
            &[
                create("noop"),
                Start(s()),
                Join(s(), None),
                Close(s()),
                Start(s()),
                Join(s(), None),
                Join(s(), Some(0)),
                IsAlive(s()),
                Exitcode(s()),
                Pid(s()),
                Name(s()),
                SetName(s(), "x".into()),
                Daemon(s()),
                SetDaemon(s(), true),
                Terminate(s()),
                Kill(s()),
                Sentinel(s()),
                Wait(0, vec![WaitOn::Handle(s())]),
                Close(s()),
                Release(s()),
                Exitcode(s()),
            ],
            &[
                Some("ok"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok ()"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err Closed"),
                Some("err InvalidArgument"),
                Some("ok ()"),
                Some("ok"),
                // Released and ended: the host has forgotten it.
                Some("err NotAChild"),
            ],
        );
    }
}

backend_tests! {
    fn seed_terminate_unstarted(backend) {
        let s = || Slot(0);
        seed(
            backend,
            &[
                create("sleep_long"),
                Terminate(s()),
                Kill(s()),
                Join(s(), Some(0)),
                Join(s(), None),
                Sentinel(s()),
                IsAlive(s()),
                Exitcode(s()),
                Pid(s()),
                Close(s()),
                Start(s()),
            ],
            &[
                Some("ok"),
                Some("err InvalidState"),
                Some("err InvalidState"),
                Some("err InvalidState"),
                Some("err InvalidState"),
                Some("err InvalidState"),
                Some("ok false"),
                Some("ok None"),
                Some("ok false"),
                Some("ok ()"),
                Some("err Closed"),
            ],
        );
    }
}

backend_tests! {
    fn seed_wait_on_bogus(backend) {
        seed(
            backend,
            &[
                Wait(5, vec![WaitOn::Handle(Raw(0))]),
                Wait(5, vec![WaitOn::Handle(Raw(u64::MAX))]),
                Wait(5, vec![WaitOn::Handle(Current)]),
                Wait(5, vec![WaitOn::Handle(Parent)]),
                Wait(1, vec![]),
                create("nap"),
                Wait(5, vec![WaitOn::Handle(Slot(0))]),
                Start(Slot(0)),
                Sentinel(Slot(0)),
                Wait(5, vec![WaitOn::Obtained(0), WaitOn::Handle(Raw(1))]),
                Join(Slot(0), None),
                Wait(0, vec![WaitOn::Obtained(0), WaitOn::Obtained(0)]),
                Wait(0, vec![]),
            ],
            &[
                Some("err InvalidArgument"),
                Some("err InvalidArgument"),
                Some("err InvalidArgument"),
                Some("err InvalidArgument"),
                Some("ok 0"),
                Some("ok"),
                Some("err InvalidArgument"),
                Some("ok ()"),
                Some("ok ()"),
                Some("err InvalidArgument"),
                Some("ok ()"),
                Some("ok 2"),
                Some("ok 0"),
            ],
        );
    }
}

backend_tests! {
    fn seed_start_twice(backend) {
        let s = || Slot(0);
        seed(
            backend,
            &[
                create("noop"),
                Start(s()),
                Start(s()),
                Join(s(), None),
                Start(s()),
                Exitcode(s()),
                SetDaemon(s(), true),
                Start(Slot(7)),
            ],
            &[
                Some("ok"),
                Some("ok ()"),
                Some("err InvalidState"),
                Some("ok ()"),
                Some("err InvalidState"),
                Some("ok Some(0)"),
                Some("err InvalidState"),
                Some("err InvalidState"),
            ],
        );
    }
}

backend_tests! {
    fn seed_join_self(backend) {
        let c = || Current;
        seed(
            backend,
            &[
                Join(c(), None),
                Join(c(), Some(0)),
                Start(c()),
                Terminate(c()),
                Kill(c()),
                Close(c()),
                Sentinel(c()),
                IsAlive(c()),
                Exitcode(c()),
                Pid(c()),
                Daemon(c()),
                SetDaemon(c(), true),
                SetName(c(), "a\0b".into()),
                Join(Parent, None),
                IsAlive(Parent),
                Release(c()),
                Info,
            ],
            &[
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("err InvalidState"),
                Some("ok true"),
                Some("ok None"),
                Some("ok true"),
                Some("ok false"),
                Some("err NotAChild"),
                Some("err InvalidArgument"),
                Some("err NotAChild"),
                Some("err NotAChild"),
                Some("ok"),
                Some("ok parent=false me=11 cpus=true authkey=32"),
            ],
        );
    }
}

backend_tests! {
    fn seed_deep_chain(backend) {
        let out = seed(
            backend,
            &[
                create_with("spawner", Args::Proper(6)),
                Start(Slot(0)),
                Join(Slot(0), None),
                Exitcode(Slot(0)),
            ],
            &[Some("ok"), Some("ok ()"), Some("ok ()"), Some("ok Some(0)")],
        );
        // Seven spawners, each with a daemonic sleeper, and the nap at the bottom.
        assert_eq!(out.names().len(), 1 + 7 * 2 + 1, "{:?}", out.names());
        assert!(
            out.names().contains(&"Process-1:1:1:1:1:1:1:1".to_string()),
            "the nap at depth 8: {:?}",
            out.names()
        );
    }
}

backend_tests! {
    fn seed_exit_codes(backend) {
        let mut ops = Vec::new();
        let mut expected = Vec::new();
        for (target, args, code) in [
            ("exits", Args::Proper(300), "ok Some(44)"),
            ("exits", Args::Proper(-1), "ok Some(255)"),
            ("exits", Args::Proper(0), "ok Some(0)"),
            ("panics", Args::None, "ok Some(1)"),
            // Arguments that do not decode.
            ("exits", Args::None, "ok Some(1)"),
            // One byte with the continuation bit set: not a whole u32.
            ("spawner", Args::Random { len: 1, seed: 3 }, "ok Some(1)"),
            ("spawner", Args::Proper(0), "ok Some(0)"),
            (
                "noop",
                Args::Random {
                    len: 65536,
                    seed: 7,
                },
                "ok Some(0)",
            ),
        ] {
            ops.extend([
                create_with(target, args),
                Start(Last),
                Join(Last, None),
                Exitcode(Last),
            ]);
            expected.extend([Some("ok"), Some("ok ()"), Some("ok ()"), Some(code)]);
        }
        for (signal, code) in [
            (Terminate(Last), "ok Some(-15)"),
            (Kill(Last), "ok Some(-9)"),
        ] {
            ops.extend([
                create("sleep_long"),
                Start(Last),
                Join(Last, Some(5)),
                IsAlive(Last),
                signal.clone(),
                Join(Last, None),
                Exitcode(Last),
                IsAlive(Last),
                // Signalling an ended process has no effect.
                Terminate(Last),
                Kill(Last),
                Exitcode(Last),
            ]);
            expected.extend([
                Some("ok"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok true"),
                Some("ok ()"),
                Some("ok ()"),
                Some(code),
                Some("ok false"),
                Some("ok ()"),
                Some("ok ()"),
                Some(code),
            ]);
        }
        seed(backend, &ops, &expected);
    }
}

backend_tests! {
    fn seed_daemon_flags(backend) {
        let daemonic = |target: &str| Create {
            target: target.into(),
            name: None,
            daemon: Some(true),
            args: Args::Proper(2),
        };
        let out = seed(
            backend,
            &[
                daemonic("noop"),
                Daemon(Last),
                SetDaemon(Last, false),
                Daemon(Last),
                SetDaemon(Last, true),
                Start(Last),
                SetDaemon(Last, false),
                Daemon(Last),
                // A daemonic spawner cannot start its child.
                daemonic("spawner"),
                Start(Last),
                Join(Last, None),
                Exitcode(Last),
                // A daemonic long sleeper left running: main's exit handler would end it, but
                // cleanup terminates it first.
                daemonic("sleep_long"),
                Start(Last),
                ActiveChildren,
            ],
            &[
                Some("ok"),
                Some("ok true"),
                Some("ok ()"),
                Some("ok false"),
                Some("ok ()"),
                Some("ok ()"),
                Some("err InvalidState"),
                Some("ok true"),
                Some("ok"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok Some(0)"),
                Some("ok"),
                Some("ok ()"),
                None,
            ],
        );
        let spawner = out.stdout_of("Process-2");
        assert!(
            spawner.contains("daemonic processes are not allowed to have children"),
            "{spawner}"
        );
    }
}

backend_tests! {
    fn seed_foreign_handles(backend) {
        // Every call on a handle that is not the caller's fails (the guest reports an effect
        // as a violation); neighbours of real handles included.
        let mut ops = vec![create("sleep_long"), Start(Last), create("noop")];
        let mut expected = vec![Some("ok"), Some("ok ()"), Some("ok")];
        for r in [
            Raw(0),
            Raw(1),
            Raw(255),
            Raw(u64::MAX),
            Raw(1 << 63),
            // Below the caller's own handle, and past the last one it holds.
            Near(0, -3),
            Near(0, -2),
            Near(1, 5),
            Near(1, 40),
            Parent,
        ] {
            ops.extend([
                Start(r.clone()),
                Join(r.clone(), None),
                Terminate(r.clone()),
                Kill(r.clone()),
                Close(r.clone()),
                SetDaemon(r.clone(), true),
                SetName(r.clone(), "stolen".into()),
                Sentinel(r.clone()),
                Release(r),
            ]);
            expected.extend([None; 9]);
        }
        ops.extend([IsAlive(Slot(0)), Name(Slot(1))]);
        expected.extend([Some("ok true"), Some("ok 9")]);
        seed(backend, &ops, &expected);
    }
}

backend_tests! {
    fn seed_release_and_active_children(backend) {
        seed(
            backend,
            &[
                create("sleep_long"),
                Start(Last),
                Release(Last),
                Release(Last),
                // Released but running: still the caller's, still active.
                IsAlive(Last),
                ActiveChildren,
                create("nap"),
                Start(Last),
                Join(Last, None),
                ActiveChildren,
                Release(Last),
                // Released and ended: forgotten.
                Exitcode(Last),
                Kill(Slot(0)),
                Join(Slot(0), None),
                ActiveChildren,
            ],
            &[
                Some("ok"),
                Some("ok ()"),
                Some("ok"),
                Some("ok"),
                Some("ok true"),
                Some("ok 1"),
                Some("ok"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok 1"),
                Some("ok"),
                Some("err NotAChild"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok 0"),
            ],
        );
    }
}

backend_tests! {
    fn seed_odd_targets_and_names(backend) {
        let named = |target: &str, name: &str| Create {
            target: target.into(),
            name: Some(name.into()),
            daemon: None,
            args: Args::None,
        };
        seed(
            backend,
            &[
                create(""),
                create("nope"),
                create("noop\0"),
                create("NOOP"),
                create("noop "),
                named("noop", "a\0b"),
                named("nope", "a\0b"),
                named("noop", ""),
                named("noop", &"x".repeat(1000)),
                Start(Last),
                Join(Last, None),
                Name(Last),
                SetName(Last, "näme ✓".into()),
                Name(Last),
                SetName(Last, "\0".into()),
                Name(Slot(0)),
            ],
            &[
                Some("err UnknownTarget"),
                Some("err UnknownTarget"),
                Some("err UnknownTarget"),
                Some("err UnknownTarget"),
                Some("err UnknownTarget"),
                Some("err InvalidArgument"),
                Some("err UnknownTarget"),
                Some("ok"),
                Some("ok"),
                Some("ok ()"),
                Some("ok ()"),
                Some("ok 1000"),
                Some("ok ()"),
                Some("ok 9"),
                Some("err InvalidArgument"),
                Some("ok 0"),
            ],
        );
    }
}

backend_tests! {
    fn seed_host_close_then_everything(backend) {
        use HostOp as H;
        let create = |target: &str, start| H::Create {
            target: target.into(),
            name: None,
            daemon: None,
            args: Args::None,
            start,
        };
        let ops = [
            create("noop", true),
            H::Join(0, None),
            H::Close(0),
            H::Start(0),
            H::Join(0, None),
            H::Terminate(0),
            H::Kill(0),
            H::Output(0),
            H::Close(0),
            create("sleep_long", false),
            H::Terminate(1),
            H::Close(1),
            create("sleep_long", true),
            H::Close(2),
            H::Join(2, Some(5)),
            H::Drop(2),
            create("spawner", true),
            H::Join(2, None),
            create("exits", true),
            H::Join(3, None),
        ];
        let bad = run_host_ops_guarded(backend, &ops);
        assert!(bad.is_empty(), "{backend:?}: {bad:#?}");
    }
}

backend_tests! {
    fn seed_child_and_parent(backend) {
        let p = || Parent;
        let child_ops = vec![
            IsAlive(p()),
            Exitcode(p()),
            Pid(p()),
            Name(p()),
            Daemon(p()),
            SetName(p(), "x".into()),
            SetDaemon(p(), true),
            Start(p()),
            Terminate(p()),
            Kill(p()),
            Close(p()),
            Sentinel(p()),
            Wait(5, vec![WaitOn::Obtained(0)]),
            Join(p(), Some(5)),
            // A deadlock if it waited (the parent joins this child): the fuzzer waits 5 ms.
            Join(p(), None),
            Release(p()),
            IsAlive(p()),
            Info,
            create("noop"),
            Start(Last),
            Join(Last, None),
            Exitcode(Last),
        ];
        let child_expected = [
            Some("ok true"),
            Some("ok None"),
            Some("ok true"),
            Some("ok 11"),
            Some("ok false"),
            Some("err NotAChild"),
            Some("err NotAChild"),
            Some("err NotAChild"),
            Some("err NotAChild"),
            Some("err NotAChild"),
            Some("err NotAChild"),
            Some("ok ()"),
            Some("ok 0"),
            Some("ok ()"),
            Some("ok ()"),
            Some("ok"),
            Some("ok true"),
            Some("ok parent=true me=9 cpus=true authkey=32"),
            Some("ok"),
            Some("ok ()"),
            Some("ok ()"),
            Some("ok Some(0)"),
        ];
        let ops = [
            Child(None, child_ops.clone()),
            Start(Last),
            Join(Last, None),
            Exitcode(Last),
            // A daemonic child cannot start its own.
            Child(Some(true), vec![create("noop"), Daemon(Last), Start(Last)]),
            Start(Last),
            Join(Last, None),
            Exitcode(Last),
        ];
        let expected = [
            Some("ok"),
            Some("ok ()"),
            Some("ok ()"),
            Some("ok Some(0)"),
            Some("ok"),
            Some("ok ()"),
            Some("ok ()"),
            Some("ok Some(0)"),
        ];
        let out = seed(backend, &ops, &expected);
        let child = out.stdout_of("Process-1");
        check_lines("Process-1", &child, &child_ops, &child_expected);
        assert!(child.ends_with("violations 0\ndone\n"), "{child}");
        check_lines(
            "Process-2",
            &out.stdout_of("Process-2"),
            &[create("noop"), Daemon(Last), Start(Last)],
            &[Some("ok"), Some("ok true"), Some("err InvalidState")],
        );
    }
}

backend_tests! {
    /// Found by this fuzzer's author while probing the library API: a `Process` outlives its
    /// `Host` (it borrows nothing). Dropping the host ends its processes (as the end of a run
    /// does); afterwards the `Process` reports how its process ended without waiting, and
    /// under `native` no child OS process is left (running or zombie).
    fn host_dropped_first(backend) {
        let host = wasmproc::Host::new(wasmproc::Config {
            backend,
            output: wasmproc::OutputMode::Capture,
            native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
            ..wasmproc::Config::default()
        })
        .unwrap();
        let program = host.load(FUZZ_OPS).unwrap();
        let asleep = host.process(&program, "sleep_long").start().unwrap();
        let pid = asleep.pid().unwrap().unwrap();
        drop(host);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let timed = asleep.join(Some(Duration::from_millis(10)));
                let _ = asleep.kill();
                let forever = asleep.join(None);
                (timed, forever, asleep.is_alive())
            }));
            let _ = tx.send(r.map_err(|_| "panicked"));
        });
        let outcome = rx.recv_timeout(Duration::from_secs(10));
        assert!(
            matches!(outcome, Ok(Ok((Ok(()), Ok(()), Ok(false))))),
            "{backend:?}: join(10 ms), kill, join(None), is_alive after drop(host): {outcome:?}"
        );
        if backend == BackendKind::Native {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            assert!(
                status.is_empty(),
                "native child {pid} still there after drop(host): {:?}",
                status.lines().find(|l| l.starts_with("State"))
            );
        }
    }
}
