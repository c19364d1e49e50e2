//! Hostile guests (SPEC §4): each runs under both backends, and each test asserts the exact
//! outcome for the offender and that a sibling finished its work unharmed.

use crate::harness::{backend_tests, lines, run_configured, run_limited};
use wasmproc::{BackendKind, ExitStatus, LIMIT_EXIT_CODE};
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_hostile!(assert_test_exists);
foreach_grants!(assert_test_exists);

const LIMIT: Option<i32> = Some(LIMIT_EXIT_CODE as i32);

backend_tests! {
    fn hostile_memory(backend) {
        let out = run_limited(backend, &[("memory", "64MiB")], HOSTILE_MEMORY, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            format!("bomb exitcode: {LIMIT:?}\nsibling exitcode: Some(0)\n"),
            "{backend:?}"
        );
        assert_eq!(
            out.stderr_of("Process-2"),
            "Process Process-2: limit memory = 67108864 bytes exceeded\n"
        );
        assert_eq!(out.stdout_of("Process-1"), "sibling sum: 500000500000\n");
    }
}

backend_tests! {
    fn hostile_loop(backend) {
        for (limit, value) in [("wall_ms", "300"), ("cpu_ms", "300")] {
            let out = run_limited(backend, &[(limit, value)], HOSTILE_LOOP, &[]);
            assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?} {limit}");
            assert_eq!(
                out.stdout(),
                format!("spin exitcode: {LIMIT:?}\nsibling exitcode: Some(0)\n"),
                "{backend:?} {limit}"
            );
            assert_eq!(
                out.stderr_of("Process-1"),
                format!("Process Process-1: limit {limit} = 300 exceeded\n")
            );
            assert_eq!(out.stdout_of("Process-2"), "sibling done\n");
            // The main process is not under the time limits.
            assert_eq!(out.stderr(), "");
        }
    }
}

backend_tests! {
    fn hostile_spawnbomb(backend) {
        // Only main can start children (depth 1): which limit refuses is certain.
        for (limits, refusal) in [
            (
                &[("children", "5"), ("depth", "1")][..],
                "main refused after 5 children: limit children = 5 reached: this process has 5 \
                 live children",
            ),
            (
                &[("processes", "3"), ("depth", "1")][..],
                "main refused after 3 children: limit processes = 3 reached: the run has 3 live \
                 processes",
            ),
        ] {
            let out = run_limited(backend, limits, HOSTILE_SPAWNBOMB, &[]);
            assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?} {limits:?}");
            assert_eq!(
                out.stdout(),
                lines(&[refusal, "main survived"]),
                "{backend:?} {limits:?}"
            );
            for name in out.names() {
                assert_eq!(out.stderr_of(&name), "", "{backend:?} {name}");
            }
        }
        // Everyone starts children until refused: the run stays within its limit.
        let out = run_limited(
            backend,
            &[("processes", "30"), ("children", "4"), ("depth", "8")],
            HOSTILE_SPAWNBOMB,
            &[],
        );
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert!(
            out.stdout().ends_with("main survived\n"),
            "{}",
            out.stdout()
        );
        let started = out.names().len() - 1;
        assert!(
            started >= 4,
            "{backend:?}: only {started} processes started"
        );
        assert!(started <= 200, "{backend:?}: {started} processes started");
        for name in out.names() {
            assert_eq!(out.stderr_of(&name), "", "{backend:?} {name}");
        }
    }
}

/// `wasmproc run ARGS` on `backend` in a shell that first runs `limit` (such as `ulimit -n
/// 64`); its exit status and stdout.
fn run_cli(backend: BackendKind, limit: &str, args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{limit}; exec \"$0\" run \"$@\""))
        .arg(env!("CARGO_BIN_EXE_wasmproc"))
        .args(args)
        .env("WASMPROC_BACKEND", backend.as_str())
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{backend:?}");
    (out.status, String::from_utf8(out.stdout).expect("utf-8"))
}

/// `stdout` of the spawn bomb: main's refusal after some children, then that it survived;
/// the number of children and the refusal's message.
fn bomb_refusal(stdout: &str) -> (u64, &str) {
    stdout
        .strip_suffix("\nmain survived\n")
        .and_then(|s| s.strip_prefix("main refused after "))
        .and_then(|s| s.split_once(" children: "))
        .and_then(|(n, message)| Some((n.parse().ok()?, message)))
        .unwrap_or_else(|| panic!("not a refusal and main's survival: {stdout}"))
}

backend_tests! {
    /// A spawn bomb under the default limits, run by the CLI (the bomb fills the OS
    /// process of a `wasm` host: not this test's). Under `native` the default `processes`
    /// comes from the machine (`native_processes`); under `wasm` too (`wasm_processes`),
    /// or the kernel's mapping budget or main's `children` refuses first.
    fn hostile_spawnbomb_defaults(backend) {
        let (status, stdout) = run_cli(backend, "true", &[HOSTILE_SPAWNBOMB]);
        assert!(status.success(), "{backend:?} {status:?}: {stdout}");
        let (children, message) = bomb_refusal(&stdout);
        assert!(children >= 1, "{stdout}");
        match backend {
            BackendKind::Native => {
                let limit = wasmproc::native_processes().limit;
                assert_eq!(
                    message,
                    format!("limit processes = {limit} reached: the run has {limit} live processes")
                );
            }
            BackendKind::Wasm => {
                let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap();
                let maps = format!("limit vm.max_map_count = {} reached: ", maps.trim());
                let limit = wasmproc::wasm_processes().limit;
                // On a busy machine main may start its own 4,096 children before its
                // children have started enough of theirs to reach either run-wide bound.
                assert!(
                    message
                        == format!(
                            "limit processes = {limit} reached: the run has {limit} live processes"
                        )
                        || message.starts_with(&maps)
                        || message == "limit children = 4096 reached: this process has 4096 live children",
                    "{message}"
                );
            }
        }
    }
}

backend_tests! {
    /// Out of descriptors: a native start that cannot open one is `limit-exceeded` naming
    /// the OS limit, and the host goes on; a `wasm` start takes no descriptor.
    fn hostile_spawnbomb_nofile(backend) {
        let (status, stdout) = run_cli(
            backend,
            "ulimit -n 64",
            &["--limit", "depth=1", "--limit", "children=100", HOSTILE_SPAWNBOMB],
        );
        assert!(status.success(), "{backend:?} {status:?}: {stdout}");
        let (children, message) = bomb_refusal(&stdout);
        match backend {
            BackendKind::Native => {
                assert!((1..100).contains(&children), "{stdout}");
                assert_eq!(
                    message,
                    "limit nofile = 64 reached: no descriptor is left to start another native \
                     process (RLIMIT_NOFILE, `ulimit -n`)"
                );
            }
            BackendKind::Wasm => {
                assert_eq!(children, 100);
                assert_eq!(
                    message,
                    "limit children = 100 reached: this process has 100 live children"
                );
            }
        }
    }
}

backend_tests! {
    /// `run_ms` bounds the whole run, main included: a main that holds a spawn bomb's
    /// processes forever ends with the limit's exit code and line, and the run with it.
    fn hostile_run_ms(backend) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmproc"))
            .env("WASMPROC_BACKEND", backend.as_str())
            .args(["run", "--limit", "run_ms=1000", "--limit", "processes=20"])
            .args(["--limit", "depth=1", HOSTILE_SPAWNBOMB, "hold"])
            .output()
            .expect("wasmproc runs");
        assert_eq!(out.status.code(), Some(i32::from(LIMIT_EXIT_CODE)), "{backend:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "main refused after 20 children: limit processes = 20 reached: the run has 20 live \
             processes\nholding\n",
            "{backend:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "Process MainProcess: limit run_ms = 1000 exceeded\n",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn hostile_deep(backend) {
        let out = run_limited(backend, &[("depth", "4")], HOSTILE_DEEP, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout_of("Process-1:1:1:1"),
            "depth 4: refused: limit depth = 4 reached: a process at depth 4 cannot start \
             children\n"
        );
        assert_eq!(out.stdout(), "depth 0: child exitcode Some(0)\n");
        assert_eq!(
            out.stdout_of("Process-1"),
            "depth 1: child exitcode Some(0)\n"
        );
        assert_eq!(out.names().len(), 5, "{backend:?}");
    }
}

backend_tests! {
    fn hostile_args(backend) {
        let out = run_limited(backend, &[("args", "1MiB")], HOSTILE_ARGS, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            lines(&[
                "2 MiB create: error LimitExceeded: start arguments of 2097152 bytes exceed \
                 limit args = 1048576 bytes",
                "1000 bytes exitcode: Some(0)",
                &format!("huge exitcode: {LIMIT:?}"),
                "sibling exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(out.stdout_of("Process-1"), "took 1000 bytes\n");
        assert_eq!(
            out.stderr_of("Process-2"),
            "Process Process-2: limit memory = 1073741824 bytes exceeded\n"
        );
        assert_eq!(out.stdout_of("Process-3"), "sibling done\n");
    }
}

backend_tests! {
    fn hostile_hosttrap(backend) {
        let out = run_limited(backend, &[], HOSTILE_HOSTTRAP, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            "liar exitcode: Some(1)\nsibling exitcode: Some(0)\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stderr_of("Process-1"),
            "Process Process-1:\nstring pointer/length out of bounds of memory\n"
        );
        assert_eq!(out.stdout_of("Process-1"), "");
        assert_eq!(out.stdout_of("Process-2"), "sibling done\n");
    }
}

backend_tests! {
    fn grants_access(backend) {
        // The tests of the two backends run at once: a directory each.
        let dir = std::env::temp_dir().join(format!(
            "wasmproc-grants-{}-{}",
            std::process::id(),
            backend.as_str()
        ));
        let (data, out) = (dir.join("data"), dir.join("out"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(data.join("secret.txt"), "the host's secret\n").unwrap();
        // Nothing granted: nothing reachable.
        let denied = run_configured(backend, |_| {}, GRANTS_ACCESS);
        assert_eq!(denied.status, ExitStatus::SUCCESS);
        for who in ["MainProcess", "Process-1"] {
            assert_eq!(
                denied.stdout_of(who),
                format!("{who} read: denied\n{who} write: denied\n{who} env: none\n"),
                "{backend:?}"
            );
        }
        // Read-only data, writable out, one variable.
        let granted = run_configured(
            backend,
            |c| {
                c.grants.dirs.push(
                    wasmproc::DirGrant::parse(&format!("{}::/data", data.display()), false)
                        .unwrap(),
                );
                c.grants.dirs.push(
                    wasmproc::DirGrant::parse(&format!("{}::/out", out.display()), true).unwrap(),
                );
                c.grants.env.push(("SECRET".into(), "42".into()));
            },
            GRANTS_ACCESS,
        );
        for who in ["MainProcess", "Process-1"] {
            assert_eq!(
                granted.stdout_of(who),
                format!("{who} read: the host's secret\n{who} write: ok\n{who} env: 42\n"),
                "{backend:?}"
            );
            assert_eq!(
                std::fs::read_to_string(out.join(format!("{who}.txt"))).unwrap(),
                who
            );
        }
        // The data directory is read-only even when its files are.
        let ro = run_configured(
            backend,
            |c| {
                c.grants.dirs.push(
                    wasmproc::DirGrant::parse(&format!("{}::/out", data.display()), false).unwrap(),
                );
            },
            GRANTS_ACCESS,
        );
        assert_eq!(
            ro.stdout(),
            "MainProcess read: denied\nMainProcess write: denied\nMainProcess env: none\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

backend_tests! {
    fn hostile_output(backend) {
        let out = run_limited(backend, &[("output", "64KiB")], HOSTILE_OUTPUT, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            format!("flood exitcode: {LIMIT:?}\nsibling exitcode: Some(0)\n"),
            "{backend:?}"
        );
        let flood = out.run.process("Process-1").expect("flood").stdout();
        // Whole 100-byte lines, up to the limit.
        assert_eq!(flood.len(), 65500, "{backend:?}");
        assert_eq!(
            out.stderr_of("Process-1"),
            "Process Process-1: limit output = 65536 bytes exceeded\n"
        );
        assert_eq!(out.stdout_of("Process-2"), "sibling done\n");
    }
}

backend_tests! {
    fn hostile_queue(backend) {
        let limits = [("message", "1MiB"), ("queued", "4MiB"), ("objects", "50")];
        let out = run_limited(backend, &limits, HOSTILE_QUEUE, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        // 4 MiB hold 63 items of 64 KiB with their postcard length prefixes (3 bytes each),
        // and then still a small one; the run holds 2 queues when the events are made.
        assert_eq!(
            out.stdout(),
            lines(&[
                "put of 2 MiB: error LimitExceeded: an item of 2097156 bytes exceeds limit \
                 message = 1048576 bytes",
                "flood exitcode: Some(0)",
                "a small item next to the flood: ()",
                "drained 4 items",
                "sibling exitcode: Some(0)",
                "objects created: 48, then error LimitExceeded: limit objects = 50 reached: the \
                 run has 50 live objects",
                "an event after dropping them: ()",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-1"),
            "flood: 63 items in, then error LimitExceeded: an item of 65539 bytes would \
             exceed limit queued = 4194304 bytes waiting in the run's queues and pipes\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-2"),
            "sibling sum: 4951\n",
            "{backend:?}"
        );
        assert_eq!(out.stderr(), "", "{backend:?}");
    }
}

backend_tests! {
    fn hostile_hugecall(backend) {
        // Memory for the largest call's 200 MiB twice over (its buffer and a copy).
        let out = run_limited(backend, &[("memory", "512MiB")], HOSTILE_HUGECALL, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            "caller exitcode: Some(0)\nsibling exitcode: Some(0)\n",
            "{backend:?}"
        );
        let mut expected = Vec::new();
        for mib in [64u64, 127, 128, 200] {
            let n = mib << 20;
            let (create, message) = if mib == 64 {
                ("()".to_string(), "()".to_string())
            } else {
                (
                    format!(
                        "error LimitExceeded: start arguments of {n} bytes exceed limit args \
                         = 67108864 bytes"
                    ),
                    format!(
                        "error LimitExceeded: an item of {n} bytes exceeds limit message = \
                         67108864 bytes"
                    ),
                )
            };
            expected.push(format!("{mib} MiB create: {create}"));
            expected.push(format!("{mib} MiB put: {message}"));
            expected.push(format!("{mib} MiB send: {message}"));
            expected.push(format!(
                "{mib} MiB set_name: error InvalidArgument: a process name has at most 4096 \
                 bytes, not {n}"
            ));
        }
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(out.stdout_of("Process-1"), lines(&expected), "{backend:?}");
        assert_eq!(out.stderr_of("Process-1"), "", "{backend:?}");
        assert_eq!(out.stdout_of("Process-2"), "sibling sum: 5050\n", "{backend:?}");
    }
}

backend_tests! {
    fn hostile_create(backend) {
        // As the attack was found: few processes, small memories, 80 creates of 60 MiB.
        let limits = [("processes", "10"), ("children", "10"), ("memory", "128MiB")];
        let out = run_limited(backend, &limits, HOSTILE_CREATE, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        let args: u64 = 60 << 20;
        // 17 records held: their arguments, and 1024 bytes plus the name (`Process-1` to
        // `Process-9` and `Process-10` to `Process-17`) each.
        let held = 17 * args + 9 * (1024 + 9) + 8 * (1024 + 10);
        let refusal = format!(
            "create 18: error LimitExceeded: start arguments of {args} bytes would exceed \
             limit held = 1073741824 bytes: the host holds {held} bytes for this run's \
             processes"
        );
        assert_eq!(
            out.stdout(),
            lines(&[
                &refusal,
                "created 17",
                "rename: ()",
                "rename too long: error InvalidArgument: a process name has at most 4096 \
                 bytes, not 4097",
                "after dropping, a child took its arguments: Some(0)",
                "sibling exitcode: Some(0)",
            ]),
            "{backend:?}"
        );
        assert_eq!(out.stdout_of("Process-18"), "sibling sum: 5050\n", "{backend:?}");
        assert_eq!(out.stdout_of("Process-19"), "first byte: 7\n", "{backend:?}");
        assert_eq!(out.stderr(), "", "{backend:?}");
    }
}

/// The lines of `--output prefix` output, by the prefix each begins with (`[name] `);
/// fails on a line that begins with none of `names`.
fn by_prefix<'a>(output: &'a str, names: &[&str]) -> Vec<(String, Vec<&'a str>)> {
    let mut groups: Vec<(String, Vec<&str>)> = names
        .iter()
        .map(|n| (format!("[{n}] "), Vec::new()))
        .collect();
    for line in output.lines() {
        let (_, group) = groups
            .iter_mut()
            .find(|(prefix, _)| line.starts_with(prefix.as_str()))
            .unwrap_or_else(|| panic!("a line without a known prefix: {line:?}"));
        group.push(line);
    }
    groups
}

backend_tests! {
    fn hostile_prefix(backend) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmproc"))
            .env("WASMPROC_BACKEND", backend.as_str())
            .args(["run", "--output", "prefix", HOSTILE_PREFIX])
            .output()
            .expect("run wasmproc");
        assert!(out.status.success(), "{backend:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{backend:?}");
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        // The host's bound on a prefixed line (PREFIX_LINE_BOUND), in bytes.
        let bound = 64 * 1024;
        let forged = "[Process-1] forged\\r[Process-2] sibling done\\x1b[1A\\x1b[2K\\x08\\x0b\
                      \\x0c\\x00\\x7f\tend\\u{9b}";
        let pieces = [
            format!("[Process-1] {}", "a".repeat(bound - 1)),
            format!("[Process-1] é{}", "b".repeat(bound - 2)),
            "[Process-1] bbccc".to_string(),
        ];
        let mut forger = vec![forged];
        forger.extend(pieces.iter().map(String::as_str));
        assert_eq!(
            by_prefix(&stdout, &["MainProcess", "Process-1", "Process-2"]),
            [
                (
                    "[MainProcess] ".to_string(),
                    vec![
                        "[MainProcess] forger exitcode: Some(0)",
                        "[MainProcess] sibling exitcode: Some(0)",
                    ]
                ),
                ("[Process-1] ".to_string(), forger),
                ("[Process-2] ".to_string(), vec!["[Process-2] sibling done"]),
            ],
            "{backend:?}"
        );
        assert!(stdout.ends_with('\n'), "{backend:?}");
    }
}

/// The kernel's budget of memory mappings (`vm.max_map_count`) under the `wasm` backend,
/// where every process is a part of the host's OS process: starts are refused before the
/// budget is gone, with `limit-exceeded`, and the host goes on (a sibling finishes its
/// work). The CLI's `WASMPROC_MAX_MAP_COUNT` sets a budget of 1,000 mappings, so that the
/// refusal comes after a few hundred sleepers instead of tens of thousands. Under `native`
/// each process has an OS process, and so a budget, of its own.
mod hostile_maps {
    use super::*;

    #[test]
    fn wasm() {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmproc"))
            .args(["run", HOSTILE_MAPS])
            .env("WASMPROC_MAX_MAP_COUNT", "1000")
            .output()
            .expect("wasmproc runs");
        let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{stdout}");
        assert!(out.status.success(), "{:?}: {stdout}", out.status);
        // How many fit depends on the mappings the host itself has (about a hundred): of
        // the 1,000, 1,000 / 16 are kept for the host, and each start is charged 4 until the
        // count is read again (the sleepers have not run yet when they are refused).
        let started: u64 = stdout
            .strip_prefix("refused after ")
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no refusal: {stdout}"));
        assert!(
            (150..=(1000 - 1000 / 16) / 4).contains(&started),
            "{stdout}"
        );
        assert_eq!(
            stdout,
            lines(&[
                &format!(
                    "refused after {started} sleepers: LimitExceeded: limit vm.max_map_count = \
                     1000 reached: the host has {} live processes",
                    started + 1
                ),
                "worker: 500500",
                "main survived, worker exitcode Some(0)",
            ])
        );
    }
}
