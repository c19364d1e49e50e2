//! `wasmproc build` on a guest crate made here the way a guest author makes one: a
//! `Cargo.toml` that depends on `wasmproc-guest` by path and a `main.rs`. The crate is built
//! in the guest programs' target directory, so that the standard library the Debian toolchain
//! builds for them (`-Zbuild-std`) is reused rather than built again.

use crate::cli::{wasmproc, wasmproc_on};
use crate::harness::backend_tests;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use wasmproc_tests::GUEST_TARGET_DIR;

/// The program: a child that prints and exits with 3; the main process prints the child's
/// exit code and exits with 5.
const MAIN_RS: &str = r#"use wasmproc_guest::{Process, current_process, targets};

fn worker(n: u32) {
    println!("{} got {n}", current_process().name().unwrap());
    wasmproc_guest::exit(n as i32);
}

targets![worker];

fn main() -> Result<(), wasmproc_guest::Error> {
    let p = Process::new("worker", &3u32)?;
    p.start()?;
    p.join(None)?;
    println!("exitcode: {:?}", p.exitcode()?);
    wasmproc_guest::exit(5);
}
"#;

/// The crate's package (and so binary) name: no program of tests/programs has it.
const NAME: &str = "wasmproc-build-test";

/// A `Cargo.toml` for package `name` with `dependencies`, a workspace of its own and the
/// profiles of `tests/programs` (whose build of the standard library it shares).
fn manifest(name: &str, dependencies: toml::Table) -> String {
    let programs: toml::Table = include_str!("../programs/Cargo.toml")
        .parse()
        .expect("tests/programs/Cargo.toml is TOML");
    let mut manifest = toml::Table::new();
    manifest.insert("workspace".into(), toml::Table::new().into());
    let package: toml::Table = [("name", name), ("version", "0.1.0"), ("edition", "2024")]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.into()))
        .collect();
    manifest.insert("package".into(), package.into());
    manifest.insert("dependencies".into(), dependencies.into());
    if let Some(profile) = programs.get("profile") {
        manifest.insert("profile".into(), profile.clone());
    }
    toml::to_string(&manifest).expect("a manifest")
}

/// A crate in a new temporary directory with `files` (path, contents).
fn crate_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).expect("create the crate's directories");
        std::fs::write(&path, contents).expect("write the crate's file");
    }
    dir
}

/// `wasmproc build ARGS` in `dir`, into the guest programs' target directory.
fn build_in(dir: &Path, args: &[&str]) -> Output {
    wasmproc()
        .arg("build")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", GUEST_TARGET_DIR)
        .output()
        .expect("run wasmproc build")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// The program built once by `wasmproc build --manifest-path` for every test that runs it,
/// after checking that the build printed its path and nothing else.
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let guest_sdk = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk"))
            .expect("the guest SDK's directory");
        let mut guest = toml::Table::new();
        guest.insert("path".into(), guest_sdk.display().to_string().into());
        let dependencies = toml::Table::from_iter([("wasmproc-guest".to_string(), guest.into())]);
        // The versions tests/programs builds with, so that its dependencies' builds are
        // reused and nothing is fetched.
        let lock = include_str!("../programs/Cargo.lock");
        let dir = crate_with(&[
            ("Cargo.toml", &manifest(NAME, dependencies)),
            ("Cargo.lock", lock),
            ("src/main.rs", MAIN_RS),
        ]);
        let manifest_path = dir.path().join("Cargo.toml");
        let out = build_in(
            &std::env::temp_dir(),
            &["--manifest-path", manifest_path.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let expected =
            Path::new(GUEST_TARGET_DIR).join(format!("wasm32-wasip2/release/{NAME}.wasm"));
        assert_eq!(
            text(&out.stdout),
            format!("{}\n", expected.display()),
            "wasmproc build prints the program's path, one line"
        );
        expected
    })
}

backend_tests! {
    /// A crate built by `wasmproc build` runs under `wasmproc run`: the child's output, the
    /// exit code main saw, main's own exit code.
    fn build_then_run(backend) {
        let program = built();
        let out = wasmproc_on(backend)
            .arg("run")
            .arg(program)
            .output()
            .expect("run wasmproc run");
        assert_eq!(
            (out.status.code(), text(&out.stdout).as_str(), text(&out.stderr).as_str()),
            (Some(5), "Process-1 got 3\nexitcode: Some(3)\n", ""),
            "{backend:?}"
        );
    }
}

/// The last line `out` wrote on stderr (after cargo's messages).
fn last_stderr_line(out: &Output) -> String {
    text(&out.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn build_refuses_a_crate_that_is_not_a_binary() {
    let dir = crate_with(&[
        (
            "Cargo.toml",
            &manifest("wasmproc-build-test-lib", toml::Table::new()),
        ),
        ("src/lib.rs", "pub fn f() {}\n"),
    ]);
    let out = build_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        last_stderr_line(&out),
        format!(
            "wasmproc: error: cargo built no program: {} has no binary target (a wasmproc \
             program is a binary crate: src/main.rs or a [[bin]] section)",
            dir.path().join("Cargo.toml").display()
        )
    );
}

#[test]
fn build_reports_that_cargo_failed() {
    let dir = crate_with(&[
        (
            "Cargo.toml",
            &manifest("wasmproc-build-test-error", toml::Table::new()),
        ),
        ("src/main.rs", "fn main() -> u32 { \"not a number\" }\n"),
    ]);
    let out = build_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[E0308]: mismatched types"),
        "{stderr}"
    );
    assert_eq!(
        last_stderr_line(&out),
        "wasmproc: error: cargo build failed (exit status: 101); its messages are above"
    );
}

#[test]
fn build_needs_a_cargo_toml() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = build_in(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "wasmproc: error: no Cargo.toml in {} or any parent directory; run `wasmproc \
             build` in the guest crate's directory or pass --manifest-path\n",
            dir.path().display()
        )
    );
    let missing = dir.path().join("Cargo.toml");
    let out = build_in(dir.path(), &["--manifest-path", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "wasmproc: error: --manifest-path {}: no such file\n",
            missing.display()
        )
    );
}
