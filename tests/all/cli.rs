//! The `wasmproc` command, run as a user runs it (the guest programs come from the
//! `wasmproc-tests` crate, which builds them). A test of a run runs on every backend, chosen
//! by `WASMPROC_BACKEND`, unless it says why not.

use crate::harness::{DEMO_OUTPUT, assert_demo_output, backend_tests};
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use wasmproc::BackendKind;
use wasmproc_tests::{
    CLI_SPARES, DEMO, HOSTILE_SPAWNBOMB, LIFELINE_TREE, PROCESS_EXITHANDLER, PROCESS_RECURSION,
    PROCESS_STDIN, PROGRAMS_MAIN, PROGRAMS_OTHER, descendants, foreach_cli, foreach_lifeline,
    running,
};

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_cli!(assert_test_exists);
foreach_lifeline!(assert_test_exists);

/// The `wasmproc` command, with the backend its flags or configuration file give (none
/// from the environment this test runs in).
pub(crate) fn wasmproc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmproc"));
    command.env_remove("WASMPROC_BACKEND");
    command
}

/// The `wasmproc` command, running `backend` (as `WASMPROC_BACKEND=...` does for a user).
pub(crate) fn wasmproc_on(backend: BackendKind) -> Command {
    let mut command = wasmproc();
    command.env("WASMPROC_BACKEND", backend.as_str());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// `wasmproc ARGS` on no backend in particular (for what runs no program).
fn run(args: &[&str]) -> Output {
    wasmproc().args(args).output().expect("run wasmproc")
}

/// `wasmproc ARGS` on `backend`.
fn run_on(backend: BackendKind, args: &[&str]) -> Output {
    wasmproc_on(backend)
        .args(args)
        .output()
        .expect("run wasmproc")
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

/// The arguments `scripts/demo.sh` runs `wasmproc` with (its `exec` line), the demo
/// program's path replaced by [`DEMO`] and the script's own arguments (`"$@"`) left out.
fn demo_script_args() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/demo.sh");
    let script = std::fs::read_to_string(path).expect("scripts/demo.sh");
    let execs: Vec<&str> = script
        .lines()
        .filter(|l| l.trim_start().starts_with("exec "))
        .collect();
    assert_eq!(execs.len(), 1, "one exec line in {path}: {execs:?}");
    let mut words = execs[0].split_whitespace().skip(1);
    let exe = words.next().expect("a command after exec");
    assert!(
        exe.ends_with("/wasmproc"),
        "{path} runs {exe}, not wasmproc"
    );
    let args: Vec<String> = words
        .filter(|&w| w != "\"$@\"")
        .map(|w| {
            if w.ends_with("/demo.wasm") {
                DEMO.to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    assert!(
        args.iter().any(|a| a == DEMO),
        "{path} runs no demo.wasm: {args:?}"
    );
    args
}

/// What the demo's panicking child writes on stderr: the run's report of the process and
/// the panic message, at the `panic!` of `tests/programs/src/bin/demo.rs`.
fn demo_stderr() -> String {
    let source = include_str!("../programs/src/bin/demo.rs");
    let message = "this child panics on purpose";
    let (line, column) = source
        .lines()
        .enumerate()
        .find_map(|(i, l)| Some((i + 1, l.find(&format!("panic!(\"{message}\")"))? + 1)))
        .expect("the demo's panic");
    format!("Process Process-3:\npanicked at src/bin/demo.rs:{line}:{column}:\n{message}\n")
}

backend_tests! {
    /// The demo as `scripts/demo.sh` runs it, which the README shows: its exact output, its
    /// exit code.
    fn cli_runs_the_demo(backend) {
        let args = demo_script_args();
        let out = wasmproc_on(backend).args(&args).output().expect("run wasmproc");
        assert_eq!(out.status.code(), Some(0), "{backend:?}: {}", text(&out.stderr));
        assert_demo_output(backend, &text(&out.stdout));
        assert_eq!(text(&out.stderr), demo_stderr(), "{backend:?}");
    }
}

/// No backend: the README shows what the demo prints (under wasm, as `cli_runs_the_demo`
/// asserts).
#[test]
fn readme_shows_the_demo_output() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(DEMO_OUTPUT),
        "the README does not show the demo's output:\n{DEMO_OUTPUT}"
    );
}

backend_tests! {
    fn cli_prefixes_output_lines(backend) {
        let out = run_on(backend, &["run", "--output", "prefix", DEMO]);
        assert_eq!(out.status.code(), Some(0), "{backend:?}");
        let stdout = text(&out.stdout);
        let unprefixed: String = stdout
            .lines()
            .map(|l| format!("{}\n", l.strip_prefix("[MainProcess] ").unwrap_or(l)))
            .collect();
        assert_demo_output(backend, &unprefixed);
        let expected: String = unprefixed
            .lines()
            .map(|l| format!("[MainProcess] {l}\n"))
            .collect();
        assert_eq!(stdout, expected, "{backend:?}");
        assert!(
            text(&out.stderr)
                .starts_with("[Process-3] Process Process-3:\n[Process-3] panicked at"),
            "{backend:?}: {}",
            text(&out.stderr)
        );
    }
}

backend_tests! {
    fn cli_exits_with_the_main_exit_code_and_passes_arguments(backend) {
        let out = run_on(backend, &["run", PROCESS_EXITHANDLER, "--", "exit"]);
        assert_eq!(out.status.code(), Some(5), "{backend:?}");
        assert_eq!(
            text(&out.stdout),
            "main ends by exit\nslow child finished\n",
            "{backend:?}"
        );
    }
}

/// `wasmproc compile DEMO -o <dir>/demo.cwasm`, checked; the artifact's path.
fn compile_demo(backend: BackendKind, dir: &std::path::Path) -> std::path::PathBuf {
    let cwasm = dir.join("demo.cwasm");
    let out = run_on(backend, &["compile", DEMO, "-o", cwasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("wasmproc: wrote {}\n", cwasm.display())
    );
    cwasm
}

/// What `wasmproc run` says of a precompiled PROGRAM without --allow-precompiled.
fn refused_precompiled(path: &std::path::Path) -> String {
    format!(
        "wasmproc: error: cannot load program {}: it is a precompiled program (native code, \
         made by `wasmproc compile`): pass --allow-precompiled to run it (in the library: \
         Host::load_precompiled)\n",
        path.display()
    )
}

backend_tests! {
    /// A precompiled program runs only with --allow-precompiled, whatever its file name.
    fn cli_precompiles(backend) {
        let dir = temp_dir("cli", backend);
        std::fs::create_dir_all(&dir).unwrap();
        let cwasm = compile_demo(backend, &dir);
        let out = run_on(backend, &["run", "--allow-precompiled", cwasm.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{backend:?}: {}", text(&out.stderr));
        assert_demo_output(backend, &text(&out.stdout));

        let out = run_on(backend, &["run", cwasm.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(text(&out.stdout), "");
        assert_eq!(text(&out.stderr), refused_precompiled(&cwasm));
        // Found by content: named .wasm, it is refused all the same.
        let disguised = dir.join("demo.wasm");
        std::fs::copy(&cwasm, &disguised).unwrap();
        let out = run_on(backend, &["run", disguised.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(text(&out.stderr), refused_precompiled(&disguised));
        // --allow-precompiled still runs components.
        let out = run_on(backend, &["run", "--allow-precompiled", DEMO]);
        assert_eq!(out.status.code(), Some(0), "{backend:?}: {}", text(&out.stderr));
        assert_demo_output(backend, &text(&out.stdout));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

backend_tests! {
    /// A damaged precompiled file, even with --allow-precompiled, is a one-line error and
    /// exit code 2, where wasmtime's checks of its header can tell.
    fn cli_refuses_damaged_precompiled_programs(backend) {
        let dir = temp_dir("cli-damaged", backend);
        std::fs::create_dir_all(&dir).unwrap();
        let cwasm = compile_demo(backend, &dir);
        let good = std::fs::read(&cwasm).unwrap();
        let truncated = dir.join("truncated.cwasm");
        std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
        // The ELF header's OS ABI byte: wasmtime's mark of its artifacts.
        let mut abi = good.clone();
        abi[7] ^= 0xff;
        let other_abi = dir.join("abi.cwasm");
        std::fs::write(&other_abi, &abi).unwrap();
        for path in [&truncated, &other_abi] {
            let out = run_on(backend, &["run", "--allow-precompiled", path.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(2), "{backend:?} {}", path.display());
            assert_eq!(
                text(&out.stderr),
                format!(
                    "wasmproc: error: cannot load program {}: not a WebAssembly component: it \
                     is native code (ELF) that is not a usable precompiled program (damaged, \
                     or not made by `wasmproc compile`)\n",
                    path.display()
                )
            );
        }
        // The architecture it was compiled for, in its engine section, made another.
        let arch = std::env::consts::ARCH.as_bytes();
        let at = good
            .windows(arch.len())
            .position(|w| w == arch)
            .expect("the artifact names its architecture");
        let mut foreign = good.clone();
        foreign[at + arch.len() - 1] = b'_';
        let foreign_arch = String::from_utf8(foreign[at..at + arch.len()].to_vec()).unwrap();
        let other_arch = dir.join("arch.cwasm");
        std::fs::write(&other_arch, &foreign).unwrap();
        let out = run_on(backend, &["run", "--allow-precompiled", other_arch.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "wasmproc: error: cannot load program {}: not a usable precompiled program: \
                 Unrecognized architecture: {foreign_arch}\n",
                other_arch.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// No backend: compiling runs no program. `compile` never overwrites its input, and refuses
/// what is not a component in one line.
#[test]
fn cli_compile_refuses_its_input_as_output_and_non_components() {
    let dir = std::env::temp_dir().join(format!("wasmproc-compile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("demo.wasm");
    std::fs::copy(DEMO, &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let link = dir.join("link.wasm");
    std::fs::hard_link(&input, &link).unwrap();
    for output in [&input, &link] {
        let out = run(&[
            "compile",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "wasmproc: error: cannot write {}: it is the program being compiled\n",
                output.display()
            )
        );
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }
    // The default output of a .cwasm input would be the input itself.
    let out = run(&["compile", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cwasm = dir.join("demo.cwasm");
    let out = run(&["compile", cwasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "wasmproc: error: cannot load program {}: it is precompiled already\n",
            cwasm.display()
        )
    );
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "these are notes, not a program\n").unwrap();
    let out = run(&["compile", notes.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), not_wasm(&notes));
    assert!(!dir.join("notes.cwasm").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `wasmproc` says of a program file that is not WebAssembly.
fn not_wasm(path: &std::path::Path) -> String {
    format!(
        "wasmproc: error: cannot load program {}: not a WebAssembly component: the file does \
         not begin with WebAssembly's magic number (\\0asm)\n",
        path.display()
    )
}

backend_tests! {
    fn cli_reports_bad_input(backend) {
        let out = run_on(backend, &["run", "/nonexistent.wasm"]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(
            text(&out.stderr),
            "wasmproc: error: cannot read program /nonexistent.wasm: No such file or directory \
             (os error 2)\n",
            "{backend:?}"
        );
        let dir = temp_dir("cli-bad", backend);
        std::fs::create_dir_all(&dir).unwrap();
        // A text file: one line, not the parser's dump of the bytes it expected.
        let notes = dir.join("notes.wasm");
        std::fs::write(&notes, "these are notes, not a program\n").unwrap();
        let out = run_on(backend, &["run", notes.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(text(&out.stderr), not_wasm(&notes), "{backend:?}");
        // An empty core module: WebAssembly, but not a component.
        let module = dir.join("module.wasm");
        std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
        let out = run_on(backend, &["run", module.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{backend:?}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "wasmproc: error: cannot load program {}: not a WebAssembly component: it is a \
                 core WebAssembly module (build the program for wasm32-wasip2 to get a \
                 component)\n",
                module.display()
            ),
            "{backend:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// No backend: the command line is refused before any runs.
#[test]
fn cli_refuses_an_unknown_backend() {
    let out = run(&["run", "--backend", "jvm", DEMO]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "invalid value 'jvm' for '--backend <BACKEND>': unknown backend 'jvm' (valid: wasm"
        ),
        "{stderr}"
    );
}

backend_tests! {
    /// Other programs are allowed by `--program NAME=PATH` or by the file's `[programs]`
    /// table, whose relative paths are relative to the file.
    fn cli_allows_other_programs(backend) {
        // The child's line and the parent's are in one stream, in either order.
        let ran = |stdout: &str| {
            stdout.contains("other program: hello world, I am Process-1")
                && stdout.contains("\nexitcode: Some(0)\n")
        };
        let flag = format!("other={PROGRAMS_OTHER}");
        let out = run_on(backend, &["run", "--program", &flag, PROGRAMS_MAIN]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(ran(&text(&out.stdout)), "{}", text(&out.stdout));

        let dir = temp_dir("cli-programs", backend);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(PROGRAMS_OTHER, dir.join("other.wasm")).unwrap();
        let cfg = dir.join("w.toml");
        std::fs::write(&cfg, "[programs]\nother = \"other.wasm\"\n").unwrap();
        let cfg = cfg.display().to_string();
        let out = run_on(backend, &["run", "--config", &cfg, PROGRAMS_MAIN]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(ran(&text(&out.stdout)), "{}", text(&out.stdout));

        std::fs::write(dir.join("w.toml"), "[programs]\n\"a b\" = \"other.wasm\"\n").unwrap();
        let out = run_on(backend, &["run", "--config", &cfg, PROGRAMS_MAIN]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            format!(
                "wasmproc: error: {cfg}:2: invalid program name 'a b' (valid: letters, digits, \
                 '-', '_' and '.')\n"
            )
        );
        let out = run_on(backend, &["run", "--program", "other", PROGRAMS_MAIN]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            text(&out.stderr),
            "wasmproc: error: --program other: expected NAME=PATH, for example worker=w.wasm\n"
        );
        // A precompiled other program needs --allow-precompiled as the main one does.
        let cwasm = dir.join("other.cwasm");
        let out = run_on(backend, &["compile", PROGRAMS_OTHER, "-o", cwasm.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let flag = format!("other={}", cwasm.display());
        let out = run_on(
            backend,
            &["run", "--allow-precompiled", "--program", &flag, PROGRAMS_MAIN],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(ran(&text(&out.stdout)), "{}", text(&out.stdout));
        // Its `create` fails, and main panics on the error.
        let out = run_on(backend, &["run", "--program", &flag, PROGRAMS_MAIN]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot load program 'other': cannot load program {}: it is a precompiled \
                 program (native code, made by `wasmproc compile`): pass --allow-precompiled \
                 to run it (in the library: Host::load_precompiled)\" }}",
                cwasm.display()
            )),
            "{stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// No backend: help runs no program.
#[test]
fn cli_help_explains_run_and_compile() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("run "), "{help}");
    assert!(help.contains("compile "), "{help}");
    let out = run(&["run", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("--backend <BACKEND>"), "{help}");
    assert!(help.contains("exit with its exit code"), "{help}");
}

backend_tests! {
    fn cli_gives_main_its_stdin_and_children_none(backend) {
        let mut child = wasmproc_on(backend)
            .args(["run", PROCESS_STDIN])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            text(&out.stdout),
            "main read 6 bytes\nchild read 0 bytes\nchild exitcode: Some(0)\n"
        );
    }
}

backend_tests! {
    /// Under `native` the host's work directory is made afresh in $TMPDIR, private to its
    /// owner (mode 0700), and removed when the host ends; `wasm` makes none.
    fn cli_native_work_dir_is_fresh_and_private(backend) {
        use std::os::unix::fs::PermissionsExt;
        let tmp = temp_dir("cli-tmpdir", backend);
        std::fs::create_dir_all(&tmp).unwrap();
        let mut child = wasmproc_on(backend)
            .args(["run", PROCESS_STDIN])
            .env("TMPDIR", &tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The main process waits for its stdin: the host is up by then.
        let entries = || -> Vec<std::path::PathBuf> {
            let list = std::fs::read_dir(&tmp).unwrap();
            list.map(|e| e.unwrap().path()).collect()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        if backend == BackendKind::Native {
            while entries().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let made = entries();
            assert_eq!(made.len(), 1, "{made:?}");
            let name = made[0].file_name().unwrap().to_str().unwrap().to_string();
            let prefix = format!("wasmproc-{}-", child.id());
            assert!(name.starts_with(&prefix), "{name}");
            let mode = std::fs::metadata(&made[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o700, "{name}: {mode:o}");
        }
        child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{backend:?}");
        assert_eq!(
            text(&out.stdout),
            "main read 3 bytes\nchild read 0 bytes\nchild exitcode: Some(0)\n"
        );
        assert_eq!(entries(), Vec::<std::path::PathBuf>::new(), "{backend:?}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

backend_tests! {
    /// A $TMPDIR that does not exist is not created: `native` refuses to start, naming it;
    /// `wasm` needs no work directory.
    fn cli_never_creates_a_missing_tmpdir(backend) {
        let tmp = temp_dir("cli-no-tmpdir", backend).join("missing");
        let out = wasmproc_on(backend)
            .args(["run", DEMO])
            .env("TMPDIR", &tmp)
            .output()
            .unwrap();
        assert!(!tmp.exists(), "{backend:?}: {} was created", tmp.display());
        match backend {
            BackendKind::Native => {
                assert_eq!(out.status.code(), Some(2));
                assert_eq!(text(&out.stdout), "");
                assert_eq!(
                    text(&out.stderr),
                    format!(
                        "wasmproc: error: failed to start the host: cannot make the native \
                         backend's work directory in {}: it is $TMPDIR, and it is not a \
                         directory (create it, or unset TMPDIR)\n",
                        tmp.display()
                    )
                );
            }
            BackendKind::Wasm => {
                assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                assert_demo_output(backend, &text(&out.stdout));
            }
        }
        let _ = std::fs::remove_dir_all(tmp.parent().unwrap());
    }
}

/// No backend: a limit is refused before anything runs, naming it.
#[test]
fn cli_refuses_limits_with_spaces_or_past_wasm32() {
    for (flag, why) in [
        (
            "memory=64 MiB",
            "invalid value '64 MiB' for limit 'memory': a value has no spaces (for example \
             '64MiB')",
        ),
        (
            "memory=5GiB",
            "invalid value '5GiB' for limit 'memory': a wasm32 process addresses at most 4GiB \
             (4294967296 bytes)",
        ),
        (
            "memory=4294967297",
            "invalid value '4294967297' for limit 'memory': a wasm32 process addresses at \
             most 4GiB (4294967296 bytes)",
        ),
    ] {
        let out = run(&["run", "--limit", flag, DEMO]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert_eq!(text(&out.stdout), "", "{flag}");
        assert_eq!(
            text(&out.stderr),
            format!("wasmproc: error: --limit {flag}: {why}\n")
        );
    }
    let out = wasmproc()
        .args(["run", DEMO])
        .env("WASMPROC_LIMIT_MEMORY", "1 GiB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "wasmproc: error: environment variable WASMPROC_LIMIT_MEMORY: invalid value '1 GiB' \
         for limit 'memory': a value has no spaces (for example '1GiB')\n"
    );
    let out = run(&["run", "--limit", "memory=4GiB", DEMO]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Which backend runs is what this test is about: it chooses each itself, by flag,
/// environment and file, and tells them apart by the demo's pids.
#[test]
fn cli_config_precedence_flag_env_file() {
    let dir = std::env::temp_dir().join(format!("wasmproc-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wasmproc.toml");
    std::fs::write(&file, "# the backend\nbackend = \"native\"\n").unwrap();
    let pid_of_first = |out: &Output| -> u32 {
        text(&out.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid=")?.parse().ok())
            .expect("a pid")
    };
    let cfg = file.to_str().unwrap();
    // The file alone: native (real pids).
    let out = wasmproc()
        .args(["run", "--config", cfg, DEMO])
        .output()
        .unwrap();
    assert!(pid_of_first(&out) > 6);
    // The environment beats the file: wasm (virtual pid 2 for the first child).
    let out = wasmproc()
        .args(["run", "--config", cfg, DEMO])
        .env("WASMPROC_BACKEND", "wasm")
        .output()
        .unwrap();
    assert_eq!(pid_of_first(&out), 2);
    // The flag beats the environment.
    let out = wasmproc()
        .args(["run", "--backend", "native", "--config", cfg, DEMO])
        .env("WASMPROC_BACKEND", "wasm")
        .output()
        .unwrap();
    assert!(pid_of_first(&out) > 6);
    // ./wasmproc.toml is read when present.
    let out = wasmproc()
        .current_dir(&dir)
        .args(["run", DEMO])
        .output()
        .unwrap();
    assert!(pid_of_first(&out) > 6);

    std::fs::write(&file, "backend = \"native\"\nouput = \"prefix\"\n").unwrap();
    let out = wasmproc()
        .args(["run", "--config", cfg, DEMO])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "wasmproc: error: {cfg}:2: unknown key 'ouput' (valid keys: backend, output, [limits], [grants], [programs])\n"
        )
    );
    std::fs::write(&file, "backend = \"jvm\"\n").unwrap();
    let out = wasmproc()
        .args(["run", "--config", cfg, DEMO])
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stderr),
        format!(
            "wasmproc: error: {cfg}:1: key 'backend': unknown backend 'jvm' (valid: wasm, native)\n"
        )
    );
    let out = wasmproc()
        .args(["run", DEMO])
        .env("WASMPROC_OUTPUT", "loud")
        .output()
        .unwrap();
    assert_eq!(
        text(&out.stderr),
        "wasmproc: error: environment variable WASMPROC_OUTPUT: unknown output mode 'loud' \
         (valid: inherit, prefix, capture)\n"
    );
    // A misspelt variable is no error: the run goes on, with a warning naming it.
    let out = wasmproc()
        .args(["run", DEMO])
        .env("WASMPROC_BAKEND", "native")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_demo_output(BackendKind::Wasm, &text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        "wasmproc: warning: environment variable WASMPROC_BAKEND is no setting of wasmproc, \
         ignored (settings: WASMPROC_BACKEND, WASMPROC_OUTPUT, WASMPROC_LIMIT_<LIMIT>)\n\
         Process Process-3:\npanicked at src/bin/demo.rs:14:5:\nthis child panics on purpose\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Program arguments follow the program, with or without a `--` first (as with `wasmtime
/// run`).
#[test]
fn cli_program_arguments_without_dashes() {
    for args in [&["exit"][..], &["--", "exit"]] {
        let out = run_on(
            BackendKind::Wasm,
            &[&["run", PROCESS_EXITHANDLER][..], args].concat(),
        );
        assert_eq!(out.status.code(), Some(5), "{args:?}");
        assert_eq!(
            text(&out.stdout),
            "main ends by exit\nslow child finished\n",
            "{args:?}"
        );
    }
}

backend_tests! {
    /// No process of a run outlives its host, even one killed with SIGKILL: under native
    /// the tree's OS processes die with it; under wasm the tree runs inside the host, which
    /// has no child processes.
    fn lifeline_tree(backend) {
        let mut host = wasmproc_on(backend)
            .args(["run", LIFELINE_TREE])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let mut pids = Vec::new();
        while pids.len() < 2 {
            let line = lines.next().expect("the tree printed its pids").unwrap();
            let (label, pid) = line.rsplit_once(": ").expect("label: pid");
            let pid: u32 = pid.parse().unwrap();
            printed.push(label.to_string());
            pids.push(pid);
        }
        printed.sort();
        assert_eq!(printed, ["child pid", "grandchild pid"], "{backend:?}");
        // Every OS process under the host: under native the tree's, and the fork server
        // and its spare.
        let all = descendants(host.id());
        match backend {
            BackendKind::Wasm => {
                pids.sort_unstable();
                assert_eq!(pids, [2, 3], "the run's own pids");
                assert_eq!(all, Vec::<u32>::new(), "the host's descendants");
            }
            BackendKind::Native => {
                assert!(pids.iter().all(|&p| running(p)), "{pids:?}");
                assert!(
                    pids.iter().all(|p| all.contains(p)) && all.len() > pids.len(),
                    "the host's descendants {all:?} are the tree's {pids:?} and its fork \
                     server's"
                );
            }
        }
        host.kill().unwrap(); // SIGKILL: the host gets no chance to clean up
        host.wait().unwrap();
        let pids = all;
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| running(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = pids.iter().copied().filter(|&p| running(p)).collect();
        assert!(
            left.is_empty(),
            "processes outlived their killed host: {left:?}"
        );
    }
}

/// A host killed with SIGKILL while a spawn bomb holds the run full (under the `native`
/// backend's default limits, hundreds of OS processes): the whole tree dies with it, the
/// fork server's process group at once (how fast: the soak command). Under `wasm` the tree
/// runs inside the host (`lifeline_tree`).
mod killed_host_mid_bomb {
    use super::*;

    #[test]
    fn native() {
        let mut host = wasmproc_on(BackendKind::Native)
            .args(["run", HOSTILE_SPAWNBOMB, "--", "hold"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
        let limit = wasmproc::native_processes().limit;
        let refusal = lines.next().expect("main's refusal").unwrap();
        assert!(
            refusal.starts_with("main refused after ")
                && refusal.ends_with(&format!(
                    " children: limit processes = {limit} reached: the run has {limit} live \
                     processes"
                )),
            "{refusal}"
        );
        assert_eq!(lines.next().expect("holding").unwrap(), "holding");
        // The run's processes, the fork server and its spares. A start counted in the
        // refusal may still be on its way to the fork server when main is refused, so the
        // tree is read until it has them all.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = descendants(host.id());
        while all.len() as u64 <= limit && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            all = descendants(host.id());
        }
        assert!(all.len() as u64 > limit, "{} descendants", all.len());
        host.kill().unwrap();
        host.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while all.iter().any(|&p| running(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = all.iter().copied().filter(|&p| running(p)).collect();
        assert!(
            left.is_empty(),
            "{} of {} processes outlived their killed host",
            left.len(),
            all.len()
        );
    }
}

/// `wasmproc run ARGS cli_spares` on `backend`, its stdin and its stdout's lines.
fn spares_host(
    backend: BackendKind,
    args: &[&str],
) -> (
    std::process::Child,
    std::process::ChildStdin,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut host = wasmproc_on(backend)
        .arg("run")
        .args(args)
        .arg(CLI_SPARES)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = host.stdin.take().unwrap();
    let lines = BufReader::new(host.stdout.take().unwrap()).lines();
    (host, stdin, lines)
}

/// One line to `cli_spares`: starts a child (`self` or `other`, the `n`-th child of the
/// run) and checks what the run prints for it, exactly; returns the child's pid.
fn spares_child(
    stdin: &mut std::process::ChildStdin,
    lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>,
    what: &str,
    n: usize,
) -> u32 {
    writeln!(stdin, "{what}").unwrap();
    let mut next = || lines.next().expect("a line from the run").unwrap();
    if what == "other" {
        assert_eq!(
            next(),
            format!(
                "other program: hello spares, I am Process-{n}, my parent is \
                 Some(\"MainProcess\")"
            )
        );
    }
    let line = next();
    let pid: u32 = line
        .strip_prefix("child ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a child line: {line:?}"));
    assert_eq!(line, format!("child {pid} exitcode Some(0)"));
    pid
}

/// The spares of the native fork server under `host` (the host's one child process):
/// that server's children, once it has made some (at most 10 s).
fn spares_under(host: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spares: Vec<u32> = descendants(host)
            .first()
            .map(|&server| descendants(server))
            .unwrap_or_default();
        if !spares.is_empty() || Instant::now() > deadline {
            return spares;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

backend_tests! {
    /// `cli_spares` starts the children it is asked for, of its own program and of
    /// another, each with a pid of its own (under wasm, the run's next).
    fn cli_spares(backend) {
        let other = format!("other={PROGRAMS_OTHER}");
        let (mut host, mut stdin, mut lines) = spares_host(backend, &["--program", &other]);
        let pids: Vec<u32> = ["self", "other", "other", "self"]
            .iter()
            .enumerate()
            .map(|(i, what)| spares_child(&mut stdin, &mut lines, what, i + 1))
            .collect();
        drop(stdin);
        assert_eq!(host.wait().unwrap().code(), Some(0), "{backend:?}");
        assert_eq!(lines.next().map(Result::unwrap), None, "{backend:?}");
        match backend {
            BackendKind::Wasm => assert_eq!(pids, [2, 3, 4, 5]),
            BackendKind::Native => {
                let mut distinct = pids.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), pids.len(), "{pids:?}");
                assert!(pids.iter().all(|&p| p > 5), "{pids:?}");
            }
        }
    }
}

/// The native fork server's spares (processes forked ahead of their request): starts go on
/// when they are killed, and spares forked before a program was loaded run it all the same.
/// Native only: the wasm backend has no fork server.
#[test]
fn native_starts_survive_killed_spares_and_new_programs() {
    let other = format!("other={PROGRAMS_OTHER}");
    let (mut host, mut stdin, mut lines) = spares_host(BackendKind::Native, &["--program", &other]);
    let mut pids: Vec<u32> = Vec::new();
    let mut start = |pids: &mut Vec<u32>, what: &str| {
        let n = pids.len() + 1;
        pids.push(spares_child(&mut stdin, &mut lines, what, n));
    };
    start(&mut pids, "self");
    for _ in 0..3 {
        // A child that ran on a spare has told its end before the fork server reaped it:
        // it may still be listed for a moment, and is not a spare.
        let spares: Vec<u32> = spares_under(host.id())
            .into_iter()
            .filter(|p| !pids.contains(p))
            .collect();
        assert!(!spares.is_empty(), "the fork server made no spare");
        for &spare in &spares {
            let killed = Command::new("kill")
                .args(["-KILL", &spare.to_string()])
                .status()
                .unwrap();
            assert!(
                killed.success(),
                "spare {spare} of {spares:?} (children: {pids:?})"
            );
        }
        // Once they have exited, no start hands a child to them. (A spare killed at the
        // moment a start hands it the child makes that child end killed, -9.)
        let deadline = Instant::now() + Duration::from_secs(10);
        while spares.iter().any(|&p| running(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        start(&mut pids, "self");
    }
    // These spares were forked before `other` was loaded.
    assert!(!spares_under(host.id()).is_empty());
    start(&mut pids, "other");
    start(&mut pids, "other");
    start(&mut pids, "self");
    drop(stdin);
    assert_eq!(host.wait().unwrap().code(), Some(0));
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), pids.len(), "{pids:?}");
}

/// The anonymous executable mappings of process `pid` that lie between its executable's
/// first and last file mappings (`/proc/PID/smaps`): `(size, AnonHugePages)` in KiB.
fn anonymous_code(pid: u32) -> Vec<(u64, u64)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let exe = exe.to_str().unwrap().trim_end_matches(" (deleted)");
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    // (start, end, executable, path) of each mapping, and its Size and AnonHugePages.
    let mut maps: Vec<(u64, u64, bool, String, u64, u64)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if !first.ends_with(':') {
            let (start, end) = first.split_once('-').unwrap();
            let perms = fields.next().unwrap();
            let path = fields.nth(3).unwrap_or_default().to_string();
            maps.push((
                u64::from_str_radix(start, 16).unwrap(),
                u64::from_str_radix(end, 16).unwrap(),
                perms.contains('x'),
                path,
                0,
                0,
            ));
        } else if let Some(last) = maps.last_mut() {
            let kib = || fields.clone().next().unwrap().parse::<u64>().unwrap();
            match first {
                "Size:" => last.4 = kib(),
                "AnonHugePages:" => last.5 = kib(),
                _ => {}
            }
        }
    }
    let of_exe = || maps.iter().filter(|m| m.3 == exe);
    let first = of_exe().map(|m| m.0).min().unwrap();
    let last = of_exe().map(|m| m.1).max().unwrap();
    maps.iter()
        .filter(|m| m.2 && m.3.is_empty() && m.0 > first && m.1 < last)
        .map(|m| (m.4, m.5))
        .collect()
}

/// The native fork server moves its executable's code onto transparent huge pages before
/// it forks (when the kernel has them: `madvise` or `always`), so its spares share those
/// pages from the fork on; with them off, the code stays mapped from the file. Native only:
/// the wasm backend has no fork server.
#[test]
fn native_fork_server_code_is_on_huge_pages() {
    let (mut host, mut stdin, mut lines) = spares_host(BackendKind::Native, &[]);
    spares_child(&mut stdin, &mut lines, "self", 1);
    let server = descendants(host.id())[0];
    let spares = spares_under(host.id());
    assert!(!spares.is_empty(), "the fork server made no spare");
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let on = thp.contains("[madvise]") || thp.contains("[always]");
    for pid in [server, spares[0]] {
        let code = anonymous_code(pid);
        if on {
            assert!(!code.is_empty(), "no anonymous code in process {pid}");
            for (size, huge) in code {
                assert!(size > 0 && size % 2048 == 0, "{size} KiB in process {pid}");
                assert_eq!(huge, size, "huge pages for {size} KiB in process {pid}");
            }
        } else {
            assert_eq!(code, [], "process {pid}, transparent huge pages {thp}");
        }
    }
    spares_child(&mut stdin, &mut lines, "self", 2);
    drop(stdin);
    assert_eq!(host.wait().unwrap().code(), Some(0));
}

/// The files under `dir`, each with its length and modification time (none if `dir` is
/// missing).
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                found.push((entry.path(), meta.len(), meta.modified().unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// `run` keeps compiled programs in wasmtime's compilation cache (its default directory,
/// `$XDG_CACHE_HOME/wasmtime`), and a second run takes the program from there (no new or
/// rewritten file); `--no-cache` writes no cache.
#[test]
fn cli_compilation_cache() {
    let dir = temp_dir("cli-cache", BackendKind::Wasm);
    let _ = std::fs::remove_dir_all(&dir);
    let run_in = |home: &std::path::Path, flags: &[&str]| {
        let out = wasmproc()
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .arg("run")
            .args(flags)
            .arg(DEMO)
            .output()
            .expect("run wasmproc");
        assert!(out.status.success(), "{out:?}");
        // The demo's child that panics on purpose says so on stderr; nothing else does.
        assert_eq!(
            text(&out.stderr),
            "Process Process-3:\npanicked at src/bin/demo.rs:14:5:\nthis child panics on purpose\n"
        );
        text(&out.stdout)
    };
    let cached = dir.join("cached");
    std::fs::create_dir_all(&cached).unwrap();
    let first = run_in(&cached, &[]);
    let cache = cached.join("cache").join("wasmtime");
    let written = files_under(&cache);
    assert!(
        written.iter().any(|(_, len, _)| *len > 0),
        "no compiled program in {}: {written:?}",
        cache.display()
    );
    assert_eq!(
        run_in(&cached, &[]),
        first,
        "the same output from the cached program"
    );
    let program_files = |files: Vec<(std::path::PathBuf, u64, std::time::SystemTime)>| {
        // wasmtime's cache also keeps statistics files, which each use rewrites.
        files
            .into_iter()
            .filter(|(p, _, _)| p.extension().is_none_or(|e| e != "stats"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        program_files(files_under(&cache)),
        program_files(written),
        "the second run compiled nothing"
    );
    let uncached = dir.join("uncached");
    std::fs::create_dir_all(&uncached).unwrap();
    assert_eq!(run_in(&uncached, &["--no-cache"]), first);
    assert!(!uncached.join("cache").exists(), "--no-cache wrote a cache");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What `run` refuses before any process starts: an `--program` file that is missing or
/// not WebAssembly, and the `output` limit, which only the library's capture mode applies.
#[test]
fn cli_checks_programs_and_the_output_limit_at_start() {
    let dir = temp_dir("cli-start-checks", BackendKind::Wasm);
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.wasm");
    let text_file = dir.join("notes.wasm");
    std::fs::write(&text_file, "just some notes\n").unwrap();
    // The stderr of a run that is refused (exit code 2) before anything ran.
    let refused = |args: &[&str]| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(text(&out.stdout), "", "nothing ran");
        text(&out.stderr)
    };
    let missing_flag = format!("other={}", missing.display());
    assert_eq!(
        refused(&["run", "--program", &missing_flag, PROGRAMS_MAIN]),
        format!(
            "wasmproc: error: program other: cannot read {}: No such file or directory (os \
             error 2)\n",
            missing.display()
        )
    );
    let text_flag = format!("other={}", text_file.display());
    assert_eq!(
        refused(&["run", "--program", &text_flag, PROGRAMS_MAIN]),
        format!(
            "wasmproc: error: program other: {}: not a WebAssembly component: the file does \
             not begin with WebAssembly's magic number (\\0asm)\n",
            text_file.display()
        )
    );
    assert_eq!(
        refused(&["run", "--limit", "output=1KiB", PROGRAMS_MAIN]),
        "wasmproc: error: limit output = 1KiB: the output limit bounds captured output (the \
         library's capture mode); wasmproc run writes output through and does not capture it\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--trace` lines in words: `event name parent-or-exitcode`, and the pid of each process
/// as its `started` line gave it and its `ended` line repeated it.
fn trace_words(lines: &str) -> Vec<String> {
    let mut pids = std::collections::HashMap::new();
    lines
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(v["ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
            let (event, name) = (v["event"].as_str().unwrap(), v["name"].as_str().unwrap());
            match event {
                "started" => {
                    pids.insert(name.to_string(), v["pid"].as_u64().unwrap());
                    format!("started {name} by {}", v["parent"].as_str().unwrap())
                }
                "ended" => {
                    assert_eq!(pids.get(name), v["pid"].as_u64().as_ref(), "{line}");
                    format!("ended {name} {} {}", v["exitcode"], v["limit"])
                }
                "signalled" => format!("signalled {name} {}", v["signal"].as_str().unwrap()),
                other => format!("{other} {name} {} {}", v["kind"], v["error"]),
            }
        })
        .collect()
}

backend_tests! {
    /// `--trace=FILE`: every process of the run, grandchildren included, as JSON lines in
    /// the order things happened, with the signals of the demo's children; `--trace` alone
    /// writes them to stderr, with a refused start and the limit that ended main.
    fn trace_writes_lifecycle_events(backend) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("trace.jsonl");
        let out = wasmproc_on(backend)
            .arg("run")
            .arg(format!("--trace={}", file.display()))
            .arg(PROCESS_RECURSION)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let mut tree = vec!["started MainProcess by ".to_string()];
        for top in ["Process-1", "Process-2"] {
            tree.push(format!("started {top} by MainProcess"));
            for n in 1..=2 {
                tree.push(format!("started {top}:{n} by {top}"));
                tree.push(format!("ended {top}:{n} 0 null"));
            }
            tree.push(format!("ended {top} 0 null"));
        }
        tree.push("ended MainProcess 0 null".to_string());
        let trace = std::fs::read_to_string(&file).unwrap();
        assert_eq!(trace_words(&trace), tree, "{backend:?}");

        let out = wasmproc_on(backend)
            .arg("run")
            .arg(format!("--trace={}", file.display()))
            .arg(DEMO)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stderr = std::fs::read_to_string(&file).unwrap();
        let words = trace_words(&stderr);
        for (name, ends) in [
            ("Process-1", vec!["ended Process-1 0 null"]),
            ("Process-2", vec!["ended Process-2 3 null"]),
            ("Process-3", vec!["ended Process-3 1 null"]),
            ("Process-4", vec!["signalled Process-4 SIGTERM", "ended Process-4 -15 null"]),
            ("Process-5", vec!["signalled Process-5 SIGKILL", "ended Process-5 -9 null"]),
        ] {
            let mine: Vec<&String> =
                words.iter().filter(|w| w.split(' ').nth(1) == Some(name)).collect();
            let mut expected = vec![format!("started {name} by MainProcess")];
            expected.extend(ends.iter().map(|e| e.to_string()));
            assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "{backend:?}: {stderr}");
        }
        assert_eq!(words.first().map(String::as_str), Some("started MainProcess by "));
        assert_eq!(words.last().map(String::as_str), Some("ended MainProcess 0 null"));
        assert_eq!(words.len(), 14, "{backend:?}: {words:?}");

        // A refused start, and a limit that ended the main process.
        let out = wasmproc_on(backend)
            .args(["run", "--trace", "--limit", "run_ms=1000", "--limit", "processes=3"])
            .args(["--limit", "depth=1", HOSTILE_SPAWNBOMB, "hold"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(i32::from(wasmproc::LIMIT_EXIT_CODE)));
        let stderr = text(&out.stderr);
        let traced: Vec<&str> = stderr.lines().filter(|l| l.starts_with('{')).collect();
        let words = trace_words(&traced.join("\n"));
        assert!(
            words.contains(
                &"start-failed Process-4 \"limit-exceeded\" \"limit processes = 3 reached: the \
                  run has 3 live processes\""
                    .to_string()
            ),
            "{backend:?}: {words:?}"
        );
        assert_eq!(
            words.last().map(String::as_str),
            Some("ended MainProcess 124 \"run_ms=1000\""),
            "{backend:?}"
        );
    }
}
