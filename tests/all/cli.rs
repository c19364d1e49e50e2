//! The `wasmproc` command, run as a user runs it (the guest programs come from the
//! `wasmproc-tests` crate, which builds them).

use std::io::Write;
use std::process::Stdio;
use std::process::{Command, Output};
use wasmproc_tests::{DEMO, PROCESS_EXITHANDLER, PROCESS_STDIN};

fn wasmproc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasmproc"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn run(args: &[&str]) -> Output {
    wasmproc().args(args).output().expect("run wasmproc")
}

const DEMO_OUTPUT: &str = "Process-1  pid=2   exitcode=0\nProcess-2  pid=3   exitcode=3\n\
                           Process-3  pid=4   exitcode=1\nProcess-4  pid=5   exitcode=-15\n\
                           Process-5  pid=6   exitcode=-9\n";

#[test]
fn cli_runs_the_demo() {
    let out = run(&["run", DEMO]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), DEMO_OUTPUT);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("Process Process-3:\npanicked at src/bin/demo.rs:"),
        "{stderr}"
    );
}

#[test]
fn cli_prefixes_output_lines() {
    let out = run(&["run", "--output", "prefix", DEMO]);
    assert_eq!(out.status.code(), Some(0));
    let expected: String = DEMO_OUTPUT
        .lines()
        .map(|l| format!("[MainProcess] {l}\n"))
        .collect();
    assert_eq!(text(&out.stdout), expected);
    assert!(
        text(&out.stderr).starts_with("[Process-3] Process Process-3:\n[Process-3] panicked at")
    );
}

#[test]
fn cli_exits_with_the_main_exit_code_and_passes_arguments() {
    let out = run(&["run", PROCESS_EXITHANDLER, "--", "exit"]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        text(&out.stdout),
        "main ends by exit\nslow child finished\n"
    );
}

#[test]
fn cli_precompiles() {
    let dir = std::env::temp_dir().join(format!("wasmproc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cwasm = dir.join("demo.cwasm");
    let out = run(&["compile", DEMO, "-o", cwasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!("wasmproc: wrote {}\n", cwasm.display())
    );
    let out = run(&["run", cwasm.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), DEMO_OUTPUT);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_reports_bad_input() {
    let out = run(&["run", "/nonexistent.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "wasmproc: error: cannot read program /nonexistent.wasm: No such file or directory (os error 2)\n"
    );
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

#[test]
fn cli_gives_main_its_stdin_and_children_none() {
    let mut child = wasmproc()
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
