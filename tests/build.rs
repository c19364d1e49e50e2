//! Builds every guest program in `tests/programs/src/bin` for wasm32-wasip2 (through
//! `scripts/build-guests.sh`, the same script the demo uses) and generates:
//! - `pub const GUEST_TARGET_DIR: &str`, the target directory they are built in,
//! - a `pub const <NAME>: &str` with the path of each program's `.wasm`, and
//! - a `foreach_<suite>!` macro per file-name prefix (`process_lifecycle.rs` is in suite
//!   `process`), so that a test file can check that every program of its suite has a test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    for watched in [
        "tests/programs/src",
        "tests/programs/Cargo.toml",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "wit",
        "scripts/build-guests.sh",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=WASMPROC_GUEST_TARGET_DIR");

    let target_dir = std::env::var_os("WASMPROC_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/guests"));
    let status = Command::new("bash")
        .arg(root.join("scripts/build-guests.sh"))
        .env("WASMPROC_GUEST_TARGET_DIR", &target_dir)
        .status()
        .expect("failed to run bash scripts/build-guests.sh");
    if !status.success() {
        panic!(
            "building the guest programs failed ({status}); see the output above. \
             If no wasm32-wasip2 toolchain is installed, run scripts/setup-guest-toolchain.sh"
        );
    }

    let out_dir = target_dir.join("wasm32-wasip2/release");
    let mut names: Vec<String> = std::fs::read_dir(root.join("tests/programs/src/bin"))
        .expect("tests/programs/src/bin exists")
        .filter_map(|e| {
            let path = e.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();

    let mut code = String::new();
    writeln!(
        code,
        "/// The target directory the guest programs are built in (cargo's `--target-dir`).\n\
         pub const GUEST_TARGET_DIR: &str = {:?};",
        target_dir.display().to_string()
    )
    .unwrap();
    let mut suites: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in &names {
        let wasm = out_dir.join(format!("{name}.wasm"));
        assert!(
            Path::new(&wasm).exists(),
            "guest program {name} was not built at {}",
            wasm.display()
        );
        writeln!(
            code,
            "/// The guest program `tests/programs/src/bin/{name}.rs`.\n\
             pub const {}: &str = {:?};",
            name.to_uppercase(),
            wasm.display().to_string()
        )
        .unwrap();
        if let Some((suite, _)) = name.split_once('_') {
            suites
                .entry(suite.to_string())
                .or_default()
                .push(name.clone());
        }
    }
    for (suite, programs) in &suites {
        writeln!(
            code,
            "/// Calls `$m!(program)` for every program of suite `{suite}`.\n\
             #[macro_export]\nmacro_rules! foreach_{suite} {{\n    ($m:ident) => {{"
        )
        .unwrap();
        for p in programs {
            writeln!(code, "        $m!({p});").unwrap();
        }
        writeln!(code, "    }};\n}}").unwrap();
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("programs.rs");
    std::fs::write(&out, code).expect("failed to write programs.rs");
}
