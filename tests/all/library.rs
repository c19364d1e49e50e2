//! The Rust library used directly, as a plugin host would: load a program, start processes
//! of its targets from the host side, join, terminate, read exit codes and output; under
//! every backend, each test on a host of its own.

use crate::harness::{assert_demo_output, backend_tests};
use std::time::Duration;
use wasmproc::{
    BackendKind, Config, Error, ErrorKind, Events, EventsError, ExitStatus, Grants, Hooks, Host,
    LIMIT_EXIT_CODE, LimitHit, OutputMode, ProcessEvent, Signal, StoreData,
};
use wasmproc_tests::{
    DEMO, GRANTS_ACCESS, HOSTILE_LOOP, HOSTILE_MEMORY, LIBRARY_HOOKS, LIBRARY_SHARED,
    PROCESS_RECURSION, PROCESS_RESULT, foreach_library,
};

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_library!(assert_test_exists);

/// A new host of `backend` that captures output (native children run the wasmproc binary
/// cargo built for these tests).
fn capture_host(backend: BackendKind) -> Host {
    Host::new(capture_config(backend)).expect("host")
}

/// The configuration of [`capture_host`], to change before making a host of it.
fn capture_config(backend: BackendKind) -> Config {
    Config {
        backend,
        output: OutputMode::Capture,
        native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
        ..Config::default()
    }
}

/// A directory of its own under the temporary directory for the test `what` under
/// `backend` (the tests of the backends run at once).
fn temp_dir(what: &str, backend: BackendKind) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "wasmproc-{what}-{}-{}",
        std::process::id(),
        backend.as_str()
    ))
}

backend_tests! {
    /// Which limit ended a process: the exit code is 124 either way, and only a limit's end
    /// names the limit (not an `exit(124)`, nor any other end).
    fn host_tells_which_limit_ended_a_process(backend) {
        let mut config = capture_config(backend);
        config.limits.set("memory", "64MiB").unwrap();
        // The host's own bound on wall time is wide, so that on a busy machine the memory
        // bomb is ended by its memory, not the clock; the loop gets a tight one of its own.
        config.limits.set("wall_ms", "60000").unwrap();
        let host = Host::new(config).expect("host");
        let (memory, looping, demo) = (
            host.load(HOSTILE_MEMORY).unwrap(),
            host.load(HOSTILE_LOOP).unwrap(),
            host.load(DEMO).unwrap(),
        );
        let bomb = host.process(&memory, "bomb").create().unwrap();
        assert_eq!(bomb.limit_hit().unwrap(), None, "not started");
        bomb.start().unwrap();
        let spin = host
            .process(&looping, "spin")
            .limit("wall_ms", "300")
            .start()
            .unwrap();
        let exits = host
            .process(&demo, "exits")
            .args(postcard::to_allocvec(&124i32).unwrap())
            .start()
            .unwrap();
        let returns = host.process(&demo, "returns").start().unwrap();
        for p in [&bomb, &spin, &exits, &returns] {
            p.join(None).unwrap();
        }
        let limit = ExitStatus::Code(LIMIT_EXIT_CODE);
        assert_eq!(bomb.status().unwrap(), Some(limit), "{backend:?}");
        assert_eq!(bomb.limit_hit().unwrap(), Some(LimitHit::Memory(64 << 20)), "{backend:?}");
        assert_eq!(
            String::from_utf8(bomb.stderr().unwrap()).unwrap(),
            format!("Process {}: limit memory = 67108864 bytes exceeded\n", bomb.name().unwrap())
        );
        assert_eq!(spin.status().unwrap(), Some(limit), "{backend:?}");
        assert_eq!(spin.limit_hit().unwrap(), Some(LimitHit::Wall(300)), "{backend:?}");
        assert_eq!(LimitHit::Wall(300).key(), "wall_ms");
        assert_eq!(exits.status().unwrap(), Some(limit), "{backend:?}");
        assert_eq!(exits.limit_hit().unwrap(), None, "exit(124) is no limit: {backend:?}");
        assert_eq!(returns.limit_hit().unwrap(), None, "{backend:?}");
        bomb.close().unwrap();
        assert_eq!(bomb.limit_hit().unwrap_err().kind, ErrorKind::Closed);
    }
}

backend_tests! {
    /// A reader of a process's output gets it as it is written, and end-of-file after the
    /// end; the output stays captured.
    fn host_streams_output(backend) {
        use std::io::{BufRead, Read};
        let host = capture_host(backend);
        let program = host.load(HOSTILE_LOOP).unwrap();
        let p = host.process(&program, "ticker").arg(&10u32).start().unwrap();
        let mut lines = std::io::BufReader::new(p.stdout_reader().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        assert_eq!(first, "tick 1");
        assert!(p.is_alive().unwrap(), "{backend:?}: the first line came while it ran");
        let rest: Vec<String> = lines.map(Result::unwrap).collect();
        let expected: Vec<String> = (2..=10).map(|i| format!("tick {i}")).collect();
        assert_eq!(rest, expected, "{backend:?}");
        assert!(!p.is_alive().unwrap(), "end-of-file after the end");
        assert_eq!(p.exitcode().unwrap(), Some(0));
        let all: String = (1..=10).map(|i| format!("tick {i}\n")).collect();
        assert_eq!(String::from_utf8(p.stdout().unwrap()).unwrap(), all);
        let mut again = String::new();
        p.stdout_reader().unwrap().read_to_string(&mut again).unwrap();
        assert_eq!(again, all, "a new reader");
        let mut err = Vec::new();
        p.stderr_reader().unwrap().read_to_end(&mut err).unwrap();
        assert_eq!(err, b"");
        let unstarted = host.process(&program, "ticker").arg(&1u32).create().unwrap();
        let mut nothing = Vec::new();
        unstarted.stdout_reader().unwrap().read_to_end(&mut nothing).unwrap();
        assert_eq!(nothing, b"", "before start");
    }
}

/// A value whose serialisation fails.
struct Unserialisable;

impl serde::Serialize for Unserialisable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value does not serialise"))
    }
}

backend_tests! {
    /// Typed arguments from Rust: `arg(&value)` serialises as the guest SDK decodes; a value
    /// of another type ends the process with exit code 1 and a line naming the target and
    /// the type; a value that does not serialise is refused at `create`.
    fn host_passes_typed_arguments(backend) {
        let host = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        let three = host.process(&program, "exits").arg(&3i32).start().unwrap();
        three.join(None).unwrap();
        assert_eq!(three.exitcode().unwrap(), Some(3), "{backend:?}");
        // Six bytes with the continuation bit: no varint of an i32.
        let wrong = host.process(&program, "exits").arg(&[0xffu8; 6]).start().unwrap();
        wrong.join(None).unwrap();
        assert_eq!(wrong.exitcode().unwrap(), Some(1), "{backend:?}");
        let stderr = String::from_utf8(wrong.stderr().unwrap()).unwrap();
        assert!(
            stderr.starts_with(&format!(
                "Process {}:\ncannot decode the arguments of target 'exits' as i32: ",
                wrong.name().unwrap()
            )),
            "{backend:?}: {stderr}"
        );
        let Err(Error::Process(e)) = host.process(&program, "exits").arg(&Unserialisable).create()
        else {
            panic!("an unserialisable argument was accepted");
        };
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert!(
            e.message.starts_with("cannot serialise the target's argument: "),
            "{}",
            e.message
        );
    }
}

backend_tests! {
    /// Typed results from Rust: `result::<T>()` decodes what the target returned, once the
    /// process has ended with exit code 0; none before, or after another end.
    fn host_reads_typed_results(backend) {
        let host = capture_host(backend);
        let program = host.load(PROCESS_RESULT).unwrap();
        let square = host.process(&program, "square").arg(&9u64).create().unwrap();
        let e = square.result::<u64>().unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::InvalidState, "process not started"));
        square.start().unwrap();
        let greet = host.process(&program, "greet").arg("bob").start().unwrap();
        let sleeps = host.process(&program, "sleeps").start().unwrap();
        assert_eq!(sleeps.result::<u32>().unwrap(), None, "{backend:?}: running");
        sleeps.kill().unwrap();
        for p in [&square, &greet, &sleeps] {
            p.join(None).unwrap();
        }
        assert_eq!(square.result::<u64>().unwrap(), Some(81), "{backend:?}");
        assert_eq!(square.result_bytes().unwrap(), Some(vec![81]), "{backend:?}");
        assert_eq!(
            greet.result::<(String, u32)>().unwrap(),
            Some(("hello bob".to_string(), 3)),
            "{backend:?}"
        );
        assert_eq!(sleeps.exitcode().unwrap(), Some(-9));
        assert_eq!(sleeps.result::<u32>().unwrap(), None, "{backend:?}: killed");
        // 81 read as a string's length, with no bytes after it.
        let e = square.result::<String>().unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        assert_eq!(
            e.message,
            format!(
                "cannot decode the result of {} as alloc::string::String",
                square.name().unwrap()
            ) + ": Hit the end of buffer, expected more data",
            "{backend:?}"
        );
    }
}

backend_tests! {
    fn host_starts_and_joins_targets(backend) {
        let host = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        assert_eq!(
            program.targets(),
            ["returns", "exits", "panics", "busy_loop", "sleeps"]
        );
        let ok = host.process(&program, "returns").start().unwrap();
        let three = host
            .process(&program, "exits")
            .args(postcard::to_allocvec(&3i32).unwrap())
            .name("three")
            .start()
            .unwrap();
        let panics = host.process(&program, "panics").start().unwrap();
        for p in [&ok, &three, &panics] {
            p.join(None).unwrap();
        }
        assert_eq!(ok.name().unwrap(), "Process-1");
        assert_eq!(three.name().unwrap(), "three");
        assert_eq!(panics.name().unwrap(), "Process-3");
        assert_eq!(ok.exitcode().unwrap(), Some(0));
        assert_eq!(three.exitcode().unwrap(), Some(3));
        assert_eq!(panics.status().unwrap(), Some(ExitStatus::FAILURE));
        assert_eq!(ok.stdout().unwrap(), b"");
        let stderr = String::from_utf8(panics.stderr().unwrap()).unwrap();
        assert!(
            stderr.starts_with("Process Process-3:\npanicked at src/bin/demo.rs:"),
            "{stderr}"
        );
        assert!(
            stderr.ends_with("this child panics on purpose\n"),
            "{stderr}"
        );
    }
}

backend_tests! {
    /// Under native, the processes are OS processes of their own: a pid not the host's.
    fn host_starts_processes_from_rust(backend) {
        let host = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        let three = host
            .process(&program, "exits")
            .args(postcard::to_allocvec(&3i32).unwrap())
            .start()
            .unwrap();
        let asleep = host.process(&program, "sleeps").start().unwrap();
        three.join(None).unwrap();
        assert_eq!(three.exitcode().unwrap(), Some(3));
        asleep.terminate().unwrap();
        asleep.join(None).unwrap();
        assert_eq!(asleep.exitcode().unwrap(), Some(-15));
        let pid = asleep.pid().unwrap().unwrap();
        assert_ne!(pid, u64::from(std::process::id()));
    }
}

backend_tests! {
    fn host_terminates_and_kills(backend) {
        let host = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        let busy = host.process(&program, "busy_loop").start().unwrap();
        let asleep = host.process(&program, "sleeps").start().unwrap();
        busy.join(Some(Duration::from_millis(50))).unwrap();
        assert!(busy.is_alive().unwrap());
        assert_eq!(busy.exitcode().unwrap(), None);
        busy.terminate().unwrap();
        asleep.kill().unwrap();
        busy.join(None).unwrap();
        asleep.join(None).unwrap();
        assert_eq!(
            busy.status().unwrap(),
            Some(ExitStatus::Signaled(Signal::Term))
        );
        assert_eq!(asleep.exitcode().unwrap(), Some(-9));
        assert!(!asleep.is_alive().unwrap());
        assert!(asleep.pid().unwrap().is_some());
        asleep.close().unwrap();
        assert_eq!(
            asleep.exitcode().unwrap_err().message,
            "process object is closed"
        );
    }
}

backend_tests! {
    fn host_rejects_bad_calls_with_errors(backend) {
        let host = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        let Err(Error::Process(e)) = host.process(&program, "missing").start() else {
            panic!("an unknown target must be an error");
        };
        assert_eq!(e.kind, ErrorKind::UnknownTarget);
        assert_eq!(e.message, "program demo.wasm has no target named 'missing'");
        let p = host.process(&program, "sleeps").create().unwrap();
        assert_eq!(
            p.join(None).unwrap_err().message,
            "can only join a started process"
        );
        p.start().unwrap();
        assert_eq!(
            p.start().unwrap_err().message,
            "cannot start a process twice"
        );
        assert_eq!(
            p.close().unwrap_err().message,
            "Cannot close a process while it is still running. You should first call join() or terminate()."
        );
        p.kill().unwrap();
        p.join(None).unwrap();
        assert_eq!(p.exitcode().unwrap(), Some(-9));
    }
}

backend_tests! {
    fn loading_bad_programs_gives_clear_errors(backend) {
        let host = capture_host(backend);
        let missing = host.load("/nonexistent/program.wasm").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "cannot read program /nonexistent/program.wasm: No such file or directory (os error 2)"
        );
        let dir = temp_dir("test", backend);
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.wasm");
        std::fs::write(&junk, b"this is not wasm").unwrap();
        let err = host.load(&junk).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot load program {}: not a WebAssembly component: the file does not begin \
                 with WebAssembly's magic number (\\0asm)",
                junk.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

backend_tests! {
    /// `load` takes components only; a precompiled file loads with the `unsafe`
    /// `load_precompiled`, and runs the same.
    fn precompiled_programs_run_the_same(backend) {
        let host = capture_host(backend);
        let dir = temp_dir("pre", backend);
        std::fs::create_dir_all(&dir).unwrap();
        let cwasm = dir.join("demo.cwasm");
        host.precompile(DEMO.as_ref(), &cwasm).unwrap();
        let disguised = dir.join("demo.wasm");
        std::fs::copy(&cwasm, &disguised).unwrap();
        for path in [&cwasm, &disguised] {
            assert_eq!(
                host.load(path).unwrap_err().to_string(),
                format!(
                    "cannot load program {}: it is a precompiled program (native code, made \
                     by `wasmproc compile`): pass --allow-precompiled to run it (in the \
                     library: Host::load_precompiled)",
                    path.display()
                )
            );
        }
        // SAFETY: this test wrote the file with this build's `precompile` just now.
        let program = unsafe { host.load_precompiled(&cwasm) }.unwrap();
        assert_eq!(program.targets().len(), 5);
        let run = host.run_main(&program, &[]).unwrap();
        assert_eq!(run.status, ExitStatus::SUCCESS);
        let stdout = String::from_utf8(run.process("MainProcess").unwrap().stdout()).unwrap();
        assert_demo_output(backend, &stdout);
        // SAFETY: a component is no native code.
        let component = unsafe { host.load_precompiled(DEMO) }.unwrap();
        assert_eq!(component.targets().len(), 5);
        // A damaged one is refused, with the opt-in too.
        let good = std::fs::read(&cwasm).unwrap();
        let truncated = dir.join("truncated.cwasm");
        std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
        // SAFETY: wasmtime's check of the header refuses it before any of it runs.
        let err = unsafe { host.load_precompiled(&truncated) }.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot load program {}: not a WebAssembly component: it is native code (ELF) \
                 that is not a usable precompiled program (damaged, or not made by `wasmproc \
                 compile`)",
                truncated.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

backend_tests! {
    /// `precompile` never writes over its input.
    fn precompile_refuses_to_overwrite_its_input(backend) {
        let host = capture_host(backend);
        let dir = temp_dir("pre-self", backend);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("demo.wasm");
        std::fs::copy(DEMO, &input).unwrap();
        let err = host.precompile(&input, &input).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write {}: it is the program being compiled",
                input.display()
            )
        );
        assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(DEMO).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

backend_tests! {
    fn authkey_is_random_per_host_and_shared_by_its_processes(backend) {
        let a = capture_host(backend);
        let b = capture_host(backend);
        assert_ne!(a.authkey(), b.authkey());
        assert_ne!(a.authkey(), [0u8; 32]);
    }
}

/// Native only: the executable it refuses is the native backend's (`native_exe`), which the
/// wasm backend does not run.
#[test]
fn native_backend_refuses_an_executable_that_is_not_wasmproc() {
    // An executable of an older build of the same version: it answers the probe without
    // the protocol this host speaks.
    let older = std::env::temp_dir().join(format!("wasmproc-older-{}", std::process::id()));
    std::fs::write(&older, "#!/bin/sh\necho wasmproc-native-child 0.1.0\n").unwrap();
    let mut perms = std::fs::metadata(&older).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&older, perms).unwrap();
    let refused = "it is not wasmproc 0.1.0 speaking protocol 3 (asked `__child --probe`, \
                   expected \"wasmproc-native-child 0.1.0 protocol 3\")";
    for (exe, why) in [
        (
            "/nonexistent/wasmproc",
            "No such file or directory (os error 2)",
        ),
        ("/bin/true", refused),
        (older.to_str().unwrap(), refused),
    ] {
        let refuse = || {
            Host::new(Config {
                backend: wasmproc::BackendKind::Native,
                native_exe: Some(exe.into()),
                ..Config::default()
            })
            .err()
            .expect("a bad native executable must be refused")
        };
        // The script was just written: a fork by another test's thread may briefly hold a
        // copy of its descriptor (until that child executes), and running it fails then.
        let mut err = refuse();
        for _ in 0..50 {
            if !err.to_string().contains("Text file busy") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            err = refuse();
        }
        assert_eq!(
            err.to_string(),
            format!("the native backend cannot use {exe} as its child executable: {why}")
        );
    }
    std::fs::remove_file(&older).unwrap();
}

backend_tests! {
    /// An async embedder: inside a single-threaded tokio runtime, 1,000 processes started
    /// from tokio tasks and awaited with `join_async` (at most 64 at once), the main process
    /// run with `run_main_async`, the blocking calls and `wait`, and the host dropped
    /// inside the runtime, ending the process still asleep; nothing panics.
    fn host_in_async_code(backend) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let host = std::sync::Arc::new(capture_host(backend));
            let program = host.load(DEMO).unwrap();
            // First, so that its children have the pids a fresh host gives.
            let run = host.run_main_async(&program, &[]).await.unwrap();
            assert_eq!(run.status, ExitStatus::SUCCESS);
            let stdout = String::from_utf8(run.process("MainProcess").unwrap().stdout()).unwrap();
            assert_demo_output(backend, &stdout);

            let at_once = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = tokio::task::JoinSet::new();
            for i in 0..1000i32 {
                let (host, program, at_once) = (host.clone(), program.clone(), at_once.clone());
                tasks.spawn(async move {
                    let _turn = at_once.acquire().await.unwrap();
                    let p = host
                        .process(&program, "exits")
                        .args(postcard::to_allocvec(&(i % 7)).unwrap())
                        .start()
                        .unwrap();
                    p.join_async(None).await.unwrap();
                    (i % 7, p.exitcode().unwrap())
                });
            }
            let mut ended = 0;
            while let Some(done) = tasks.join_next().await {
                let (code, exitcode) = done.unwrap();
                assert_eq!(exitcode, Some(code), "{backend:?}");
                ended += 1;
            }
            assert_eq!(ended, 1000);

            let returns = host.process(&program, "returns").start().unwrap();
            returns.join(None).unwrap();
            assert_eq!(returns.exitcode().unwrap(), Some(0));
            let asleep = host.process(&program, "sleeps").start().unwrap();
            assert_eq!(host.wait(&[&asleep, &returns], None).unwrap(), [1]);
            let none = host
                .wait_async(&[&asleep], Some(Duration::from_millis(10)))
                .await
                .unwrap();
            assert!(none.is_empty(), "{none:?}");

            let host = std::sync::Arc::into_inner(host).expect("the tasks are done");
            drop(host);
            assert_eq!(asleep.status().unwrap(), Some(ExitStatus::Signaled(Signal::Kill)));
            asleep.join_async(None).await.unwrap();
        });
    }
}

backend_tests! {
    /// `Host::wait` takes only the host's own started processes.
    fn wait_refuses_what_it_cannot_wait_for(backend) {
        let host = capture_host(backend);
        let other = capture_host(backend);
        let program = host.load(DEMO).unwrap();
        let unstarted = host.process(&program, "returns").create().unwrap();
        let err = host.wait(&[&unstarted], None).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::InvalidState, "process not started")
        );
        let their_program = other.load(DEMO).unwrap();
        let theirs = other.process(&their_program, "returns").start().unwrap();
        let err = host.wait(&[&theirs], None).unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (ErrorKind::InvalidArgument, "the process belongs to another host")
        );
    }
}

/// A `Config` built in code is checked as the settings are: a memory limit past wasm32 is
/// an error from `Host::new`, not a host that misbehaves later.
#[test]
fn host_refuses_a_memory_limit_past_wasm32() {
    let mut config = Config::default();
    config.limits.memory = (4 << 30) + 1;
    let Err(e) = Host::new(config) else {
        panic!("a host with a 4GiB + 1 byte memory limit");
    };
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "invalid configuration: limit memory = 4294967297 bytes: a wasm32 process addresses at \
         most 4GiB (4294967296 bytes)"
    );
    let mut config = Config::default();
    config.limits.memory = 4 << 30;
    assert!(Host::new(config).is_ok());
}

/// A program of `Config::programs` that cannot be read, or is text or a core module, is
/// refused when the host is made, naming it; a component is taken.
#[test]
fn host_checks_its_programs_when_made() {
    let dir = temp_dir("programs-at-new", BackendKind::Wasm);
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.wasm");
    let text = dir.join("notes.wasm");
    std::fs::write(&text, "just some notes\n").unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let refusal = |path: &std::path::Path| {
        let config = Config {
            programs: vec![("other".into(), path.to_path_buf())],
            ..Config::default()
        };
        match Host::new(config) {
            Err(e @ Error::Program { .. }) => e.to_string(),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a host with {} as a program", path.display()),
        }
    };
    assert_eq!(
        refusal(&missing),
        format!(
            "program other: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        refusal(&text),
        format!(
            "program other: {}: not a WebAssembly component: the file does not begin with \
             WebAssembly's magic number (\\0asm)",
            text.display()
        )
    );
    assert_eq!(
        refusal(&core),
        format!(
            "program other: {}: not a WebAssembly component: it is a core WebAssembly module \
             (build the program for wasm32-wasip2 to get a component)",
            core.display()
        )
    );
    let config = Config {
        programs: vec![("other".into(), DEMO.into())],
        ..Config::default()
    };
    assert!(Host::new(config).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every event waiting in `events`, each in words.
fn drain(events: &mut Events) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => got.push(describe(&event)),
            Err(EventsError::Timeout) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

fn describe(event: &ProcessEvent) -> String {
    match event {
        ProcessEvent::Started { name, parent, .. } => format!("started {name} by {parent:?}"),
        ProcessEvent::StartFailed {
            name,
            parent,
            error,
        } => format!(
            "refused {name} by {parent}: {:?} {}",
            error.kind, error.message
        ),
        ProcessEvent::Signalled { name, signal, .. } => format!("signalled {name} {signal:?}"),
        ProcessEvent::Ended {
            name,
            status,
            limit,
            ..
        } => format!("ended {name} {} {limit:?}", status.exitcode()),
    }
}

backend_tests! {
    /// Lifecycle events: every process of a run, grandchildren included (under native they
    /// start in a child's OS process), in the order things happened; the processes started
    /// from Rust; kills, limits and refused starts; a subscriber that does not keep up
    /// misses events, and is told how many.
    fn host_publishes_lifecycle_events(backend) {
        let host = capture_host(backend);
        let mut events = host.events(1024);
        let program = host.load(PROCESS_RECURSION).unwrap();
        assert_eq!(host.run_main(&program, &[]).unwrap().status, ExitStatus::SUCCESS);
        let mut tree = vec!["started MainProcess by \"\"".to_string()];
        for top in ["Process-1", "Process-2"] {
            tree.push(format!("started {top} by \"MainProcess\""));
            for n in 1..=2 {
                tree.push(format!("started {top}:{n} by \"{top}\""));
                tree.push(format!("ended {top}:{n} 0 None"));
            }
            tree.push(format!("ended {top} 0 None"));
        }
        tree.push("ended MainProcess 0 None".to_string());
        assert_eq!(drain(&mut events), tree, "{backend:?}");

        let leaf = host.process(&program, "node").arg(&2u32).start().unwrap();
        leaf.join(None).unwrap();
        let demo = host.load(DEMO).unwrap();
        let sleeper = host.process(&demo, "sleeps").start().unwrap();
        sleeper.kill().unwrap();
        sleeper.join(None).unwrap();
        // The async receive, on any executor.
        let first = futures::executor::block_on(events.recv_async()).unwrap();
        assert_eq!(describe(&first), "started Process-1 by \"MainProcess\"");
        let ProcessEvent::Started { pid, .. } = first else { unreachable!() };
        assert_eq!(Some(pid), leaf.pid().unwrap());
        assert_eq!(
            drain(&mut events),
            [
                "ended Process-1 0 None",
                "started Process-2 by \"MainProcess\"",
                "signalled Process-2 Kill",
                "ended Process-2 -9 None",
            ],
            "{backend:?}"
        );

        let mut config = capture_config(backend);
        config.limits.set("memory", "64MiB").unwrap();
        config.limits.set("children", "1").unwrap();
        let limited = Host::new(config).unwrap();
        // Two events kept: the others are missed, and counted.
        let mut few = limited.events(2);
        let mut all = limited.events(100);
        let bomb = limited.load(HOSTILE_MEMORY).unwrap();
        let p = limited.process(&bomb, "bomb").start().unwrap();
        let refused = limited.process(&bomb, "bomb").start().unwrap_err();
        p.join(None).unwrap();
        let refusal = "limit children = 1 reached: this process has 1 live children";
        assert_eq!(refused.to_string(), refusal);
        assert_eq!(
            drain(&mut all),
            [
                "started Process-1 by \"MainProcess\"".to_string(),
                format!("refused Process-2 by MainProcess: LimitExceeded {refusal}"),
                format!("ended Process-1 124 Some(Memory({}))", 64 << 20),
            ],
            "{backend:?}"
        );
        assert_eq!(
            describe(&few.try_recv().unwrap()),
            "started Process-1 by \"MainProcess\""
        );
        assert!(matches!(few.try_recv(), Ok(ProcessEvent::StartFailed { .. })));
        assert_eq!(few.try_recv(), Err(EventsError::Missed(1)));
        assert_eq!(few.try_recv(), Err(EventsError::Timeout));
        drop(limited);
        assert_eq!(few.recv(None), Err(EventsError::Closed), "after the host is gone");
    }
}

/// Hooks that add `test:hooks/host-api`'s `answer` (the question's length times 100, plus
/// how many times this process asked), count each process's questions in its store, and
/// give each store 20 million units of fuel.
pub fn answering_hooks() -> Hooks {
    Hooks::default()
        .config(|c| {
            c.consume_fuel(true);
        })
        .linker(|linker| {
            linker.instance("test:hooks/host-api")?.func_wrap(
                "answer",
                |mut store: wasmproc::wasmtime::StoreContextMut<'_, StoreData>, (q,): (String,)| {
                    let asked = store.data_mut().extension_mut::<u32>().expect("a counter");
                    *asked += 1;
                    Ok((q.len() as u32 * 100 + *asked,))
                },
            )
        })
        .store(|store| {
            store.data_mut().set_extension(0u32);
            store.set_fuel(20_000_000)
        })
}

backend_tests! {
    /// The embedder's hooks: a host function of its own that guests import (in the main
    /// process and in a child, each with its own store data), and fuel, which ends a
    /// spinning child. Under native the hooks must run in the child OS processes too: a
    /// native executable that does not run them is refused at `Host::new` (the example
    /// plugin_host runs hooked native children with an executable of its own).
    fn library_hooks(backend) {
        let config = Config {
            hooks: answering_hooks(),
            ..capture_config(backend)
        };
        if backend == BackendKind::Native {
            let Err(Error::NativeExe { why, .. }) = Host::new(config) else {
                panic!("a native host with hooks and the wasmproc executable was made");
            };
            assert_eq!(
                why,
                "the host has hooks (Config::hooks), and this executable runs native children \
                 without them: name an executable whose main calls \
                 wasmproc::native_child_main_with(hooks) as Config::native_exe"
            );
            return;
        }
        let host = Host::new(config).unwrap();
        let program = host.load(LIBRARY_HOOKS).unwrap();
        let run = host.run_main(&program, &[]).unwrap();
        assert_eq!(run.status, ExitStatus::SUCCESS);
        let main = run.process("MainProcess").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&main.stdout()),
            "main asks: 401\nmain asks again: 402\nask exitcode: Some(0)\nspin exitcode: Some(1)\n"
        );
        assert_eq!(String::from_utf8_lossy(&run.process("ask").unwrap().stdout()), "child asks: 501\n");
        assert_eq!(
            String::from_utf8_lossy(&run.process("spin").unwrap().stderr()),
            "Process spin:\nwasm trap: all fuel consumed by WebAssembly\n"
        );
        // A program that imports what no hook adds does not load.
        let plain = capture_host(backend);
        let Err(Error::LoadProgram { message, .. }) = plain.load(LIBRARY_HOOKS) else {
            panic!("a program with an unknown import loaded");
        };
        assert!(message.contains("test:hooks/host-api"), "{message}");
    }
}

backend_tests! {
    /// Limits and grants of a process's own, from Rust: lower than the host's (never
    /// higher), inherited by its children; run-wide limits and grants the host does not
    /// give are refused at create.
    fn host_gives_processes_bounds_of_their_own(backend) {
        let mut config = capture_config(backend);
        config.limits.set("memory", "64MiB").unwrap();
        config.grants.env.push(("SECRET".into(), "s3cret".into()));
        let host = Host::new(config).unwrap();
        let hostile = host.load(HOSTILE_MEMORY).unwrap();
        let small = host.process(&hostile, "bomb").limit("memory", "16MiB").start().unwrap();
        let big = host.process(&hostile, "bomb").limit("memory", "1GiB").start().unwrap();
        let plain = host.process(&hostile, "bomb").start().unwrap();
        for p in [&small, &big, &plain] {
            p.join(None).unwrap();
        }
        assert_eq!(
            small.limit_hit().unwrap(),
            Some(LimitHit::Memory(16 << 20)),
            "{backend:?}: {:?} {}",
            small.exitcode(),
            String::from_utf8_lossy(&small.stderr().unwrap())
        );
        assert_eq!(big.limit_hit().unwrap(), Some(LimitHit::Memory(64 << 20)), "{backend:?}: never above the host's");
        assert_eq!(plain.limit_hit().unwrap(), Some(LimitHit::Memory(64 << 20)), "{backend:?}");

        // depth = 2: a child of the process may start no children of its own.
        let tree = host.load(PROCESS_RECURSION).unwrap();
        let node = host.process(&tree, "node").arg(&0u32).limit("depth", "2").start().unwrap();
        node.join(None).unwrap();
        assert_eq!(node.exitcode().unwrap(), Some(1), "{backend:?}");
        let stdout = String::from_utf8(node.stdout().unwrap()).unwrap();
        assert_eq!(stdout, format!("{}\n", node.name().unwrap()), "{backend:?}");
        let unbounded = host.process(&tree, "node").arg(&0u32).start().unwrap();
        unbounded.join(None).unwrap();
        assert_eq!(unbounded.exitcode().unwrap(), Some(0), "{backend:?}");

        // The grants: none of the host's, or only some.
        let grants = host.load(GRANTS_ACCESS).unwrap();
        let bare = host.process(&grants, "report").name("bare").grants(Grants::default()).start().unwrap();
        let granted = host.process(&grants, "report").name("granted").start().unwrap();
        bare.join(None).unwrap();
        granted.join(None).unwrap();
        assert_eq!(
            String::from_utf8(bare.stdout().unwrap()).unwrap(),
            "bare read: denied\nbare write: denied\nbare env: none\n"
        );
        assert_eq!(
            String::from_utf8(granted.stdout().unwrap()).unwrap(),
            "granted read: denied\ngranted write: denied\ngranted env: s3cret\n"
        );

        let refused = |builder: wasmproc::ProcessBuilder<'_>| match builder.create() {
            Err(Error::Process(e)) => {
                assert_eq!(e.kind, ErrorKind::InvalidArgument);
                e.message
            }
            other => panic!("created: {other:?}"),
        };
        assert_eq!(
            refused(host.process(&tree, "node").limit("processes", "3")),
            "limit 'processes' bounds a whole run: a process cannot have its own (limits a \
             process may have: children, depth, memory, cpu_ms, wall_ms, args, output)"
        );
        assert_eq!(
            refused(host.process(&tree, "node").limit("memory", "lots")),
            "invalid value 'lots' for limit 'memory' (valid: a whole number of bytes, \
             optionally ending in KiB, MiB or GiB)"
        );
        let network = Grants { network: true, ..Grants::default() };
        assert_eq!(
            refused(host.process(&tree, "node").grants(network)),
            "the network is not granted to the host's processes"
        );
        let other_secret = Grants { env: vec![("SECRET".into(), "other".into())], ..Grants::default() };
        assert_eq!(
            refused(host.process(&tree, "node").grants(other_secret)),
            "environment variable SECRET (with this value) is not granted to the host's processes"
        );
    }
}

backend_tests! {
    /// Queues and pipes shared by the Rust program and the processes it starts: passed in
    /// the start arguments, used from both sides, blocking and async; a queue serialised
    /// anywhere else, or passed to another host's process, is refused.
    fn library_shared(backend) {
        let host = capture_host(backend);
        let program = host.load(LIBRARY_SHARED).unwrap();
        let jobs = host.queue::<u32>(0).unwrap();
        let results = host.queue::<u64>(2).unwrap();
        let doubler = host.process(&program, "doubler").arg(&(&jobs, &results)).start().unwrap();
        for n in 1..=5 {
            jobs.put(&n).unwrap();
        }
        jobs.put(&0).unwrap();
        let mut got = vec![futures::executor::block_on(results.get_async()).unwrap()];
        for _ in 0..4 {
            got.push(results.get_timeout(Duration::from_secs(30)).unwrap());
        }
        assert_eq!(got, [2, 4, 6, 8, 10], "{backend:?}");
        doubler.join(None).unwrap();
        assert_eq!(doubler.exitcode().unwrap(), Some(0), "{backend:?}");
        assert_eq!(results.qsize().unwrap(), 0);
        let e = results.try_get().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Empty, "{backend:?}");
        results.put(&1).unwrap();
        results.put(&2).unwrap();
        let e = results.put_timeout(&3, Duration::from_millis(10)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Full, "{backend:?}: maxsize 2");

        let (mine, theirs) = host.pipe(true).unwrap();
        let echo = host.process(&program, "echo").arg(&theirs).start().unwrap();
        // The process holds its end now; this side lets go of it, so that the process
        // sees end-of-file once `mine` goes.
        drop(theirs);
        for word in ["hello", "plugin"] {
            mine.send(word).unwrap();
            assert_eq!(mine.recv::<String>().unwrap(), word.to_uppercase(), "{backend:?}");
        }
        assert!(!mine.poll(Duration::ZERO).unwrap());
        drop(mine);
        echo.join(None).unwrap();
        assert_eq!(echo.exitcode().unwrap(), Some(2), "{backend:?}: two messages, then EOF");

        let e = postcard::to_allocvec(&jobs).unwrap_err();
        assert!(matches!(e, postcard::Error::SerdeSerCustom), "{e:?}");
        let other = capture_host(backend);
        let elsewhere = other.load(LIBRARY_SHARED).unwrap();
        let Err(Error::Process(e)) = other.process(&elsewhere, "doubler").arg(&(&jobs, &results)).create()
        else {
            panic!("another host's queue was passed");
        };
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::InvalidArgument, "a Queue of another host cannot be passed to this one's processes")
        );
    }
}

backend_tests! {
    /// Events, locks and semaphores shared by the Rust program and a process it starts:
    /// the process waits for the Rust side's event, finds the lock the Rust side holds and
    /// gets it once released, takes the semaphore's units; the Rust side sees the guest's
    /// changes (an event set, units taken, a lock left free).
    fn library_shared_sync(backend) {
        let host = capture_host(backend);
        let program = host.load(LIBRARY_SHARED).unwrap();
        let (go, done) = (host.event().unwrap(), host.event().unwrap());
        let lock = host.lock().unwrap();
        let rlock = host.rlock().unwrap();
        let sem = host.semaphore(2).unwrap();
        let bounded = host.bounded_semaphore(1).unwrap();
        let log = host.queue::<String>(0).unwrap();
        assert!(lock.acquire(None).unwrap());
        let p = host
            .process(&program, "gatekeeper")
            .arg(&(&go, &done, &lock, &rlock, &sem, &bounded, &log))
            .start()
            .unwrap();
        assert!(!go.is_set().unwrap());
        go.set().unwrap();
        let next = || log.get_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(next(), "go: true");
        assert_eq!(next(), "try_acquire the held lock: false");
        lock.release().unwrap();
        assert_eq!(next(), "acquire it: true");
        assert_eq!(next(), "semaphore: true true false");
        assert_eq!(next(), "rlock twice: true true");
        assert_eq!(next(), "bounded release too many: semaphore or lock released too many times");
        assert!(futures::executor::block_on(done.wait_async(Some(Duration::from_secs(30)))).unwrap());
        p.join(None).unwrap();
        assert_eq!(p.exitcode().unwrap(), Some(0), "{backend:?}");
        assert_eq!(sem.value().unwrap(), 0);
        assert!(!sem.try_acquire().unwrap());
        assert_eq!(lock.value().unwrap(), 1);
        assert!(rlock.acquire(Some(Duration::from_secs(1))).unwrap());
        assert!(rlock.acquire(None).unwrap(), "the Rust side's own rlock, twice");
        rlock.release().unwrap();
        rlock.release().unwrap();
        let e = rlock.release().unwrap_err();
        assert_eq!(e.message, "cannot release un-acquired lock");
        assert!(done.is_set().unwrap());
        done.clear().unwrap();
        assert!(!done.wait(Some(Duration::from_millis(10))).unwrap());
        assert!(lock.try_acquire().unwrap());
        let e = postcard::to_allocvec(&lock).unwrap_err();
        assert!(matches!(e, postcard::Error::SerdeSerCustom), "{e:?}");
    }
}
