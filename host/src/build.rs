//! `wasmproc build`: builds a guest crate for wasm32-wasip2 with the toolchain this project
//! sets up, and names the `.wasm` programs it produced.
//!
//! The toolchain is chosen as `scripts/build-guests.sh` chooses it: rustup's `wasm32-wasip2`
//! target when it is installed, otherwise Debian's `rustc-web` with `-Zbuild-std` (the same
//! `--config` flags and environment). When neither is there, the setup script
//! `scripts/setup-guest-toolchain.sh`, which this binary carries, installs the Debian route.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `scripts/setup-guest-toolchain.sh` (through the link `host/scripts/`, so that the packaged
/// crate carries it too).
const SETUP_SCRIPT: &str = include_str!("../scripts/setup-guest-toolchain.sh");

/// The target guests are built for.
const TARGET: &str = "wasm32-wasip2";

/// Variables that a cargo build exports for what it runs (build scripts, tests) and that are
/// meant for that outer build, or that would override the flags given here; the same list as
/// `scripts/build-guests.sh`, less `CARGO_TARGET_DIR`, which a user sets for this build too.
const UNSET: &[&str] = &[
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_PKG_NAME",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
];

/// What `wasmproc build` was asked to build.
pub struct Request {
    /// The crate's `Cargo.toml` (or its directory); `None`: the one cargo finds from the
    /// current directory.
    pub manifest_path: Option<PathBuf>,
    /// Build the dev profile instead of release.
    pub debug: bool,
    /// More arguments for `cargo build`.
    pub cargo_args: Vec<String>,
}

/// The two ways of compiling for wasm32-wasip2 that the project supports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Toolchain {
    /// rustup's `wasm32-wasip2` target, with its prebuilt standard library.
    Rustup,
    /// Debian's `rustc-web`, building the standard library from `rust-web-src`.
    DebianBuildStd,
}

/// Builds the crate of `request` and returns the `.wasm` program of each binary target
/// cargo built (fresh or up to date), in cargo's order.
pub fn build(request: &Request) -> anyhow::Result<Vec<PathBuf>> {
    let manifest = manifest_path(request.manifest_path.as_deref())?;
    let toolchain = match toolchain() {
        Ok(t) => t,
        Err(missing) => {
            eprintln!(
                "wasmproc build: no toolchain for {TARGET} (missing: {}); running the setup \
                 script (scripts/setup-guest-toolchain.sh)",
                missing.join(", ")
            );
            run_setup()?;
            toolchain().map_err(|missing| {
                anyhow::anyhow!(
                    "the setup script ran but the {TARGET} toolchain is still incomplete \
                     (missing: {}); install rustup's target (rustup target add {TARGET}) or \
                     Debian's rustc-web, rust-web-src, rust-web-llvm, lld-22 and wasi-libc",
                    missing.join(", ")
                )
            })?
        }
    };

    let mut cargo = Command::new("cargo");
    for name in UNSET {
        cargo.env_remove(name);
    }
    cargo
        .args(["build", "--message-format=json-render-diagnostics"])
        .args(["--target", TARGET]);
    if !request.debug {
        cargo.arg("--release");
    }
    cargo.arg("--manifest-path").arg(&manifest);
    if toolchain == Toolchain::DebianBuildStd {
        cargo
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["--config", r#"build.rustc="/usr/bin/rustc""#])
            .args([
                "--config",
                r#"target.wasm32-wasip2.rustflags=["-L","native=/usr/lib/wasm32-wasi","-C","link-arg=--wasm-ld-path=/usr/bin/wasm-ld-22"]"#,
            ])
            .arg("-Zbuild-std=std,panic_abort");
    }
    cargo
        .args(&request.cargo_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());

    let mut child = cargo
        .spawn()
        .context("failed to run cargo (is it on PATH?)")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut programs = Vec::new();
    let mut read_error = None;
    for line in BufReader::new(stdout).lines() {
        match line {
            Ok(line) => collect_programs(&line, &mut programs),
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    let status = child.wait().context("failed to wait for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); its messages are above");
    }
    if let Some(e) = read_error {
        return Err(e).context("failed to read cargo's messages");
    }
    if programs.is_empty() {
        bail!(
            "cargo built no program: {} has no binary target (a wasmproc program is a binary \
             crate: src/main.rs or a [[bin]] section)",
            manifest.display()
        );
    }
    Ok(programs)
}

/// The crate's manifest: `given` (a directory stands for its `Cargo.toml`), or else the
/// nearest `Cargo.toml` from the current directory up, which is the one cargo finds.
fn manifest_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => {
            let path = if path.is_dir() {
                path.join("Cargo.toml")
            } else {
                path.to_path_buf()
            };
            if !path.is_file() {
                bail!("--manifest-path {}: no such file", path.display());
            }
            Ok(path)
        }
        None => {
            let cwd = std::env::current_dir().context("failed to read the current directory")?;
            cwd.ancestors()
                .map(|dir| dir.join("Cargo.toml"))
                .find(|path| path.is_file())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no Cargo.toml in {} or any parent directory; run `wasmproc build` in \
                         the guest crate's directory or pass --manifest-path",
                        cwd.display()
                    )
                })
        }
    }
}

/// Adds to `programs` the `.wasm` files of a binary target named by one line of cargo's
/// JSON output (a `compiler-artifact` message); other lines are passed on to stderr unless
/// they are other cargo messages.
fn collect_programs(line: &str, programs: &mut Vec<PathBuf>) {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
        // Not a message of cargo's: something a build step printed.
        let _ = writeln!(std::io::stderr(), "{line}");
        return;
    };
    if message["reason"] != "compiler-artifact" {
        return;
    }
    let is_bin = message["target"]["kind"]
        .as_array()
        .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"));
    if !is_bin {
        return;
    }
    let files = message["filenames"].as_array().into_iter().flatten();
    for file in files.filter_map(serde_json::Value::as_str) {
        let path = PathBuf::from(file);
        if path.extension().is_some_and(|e| e == "wasm") && !programs.contains(&path) {
            programs.push(path);
        }
    }
}

/// The toolchain to build with, or the parts missing for the Debian route when rustup's
/// target is not installed either (the checks of `scripts/build-guests.sh`).
fn toolchain() -> Result<Toolchain, Vec<&'static str>> {
    let rustup_has_target = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l == TARGET)
        });
    if rustup_has_target {
        return Ok(Toolchain::Rustup);
    }
    let mut missing = Vec::new();
    let debian_rustc = Command::new("/usr/bin/rustc")
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"rustc 1."));
    if !debian_rustc {
        missing.push("rustc-web");
    }
    for (path, package) in [
        ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
        ("/usr/bin/wasm-ld-22", "lld-22"),
        ("/usr/lib/wasm32-wasi", "wasi-libc"),
    ] {
        if !Path::new(path).exists() {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        Ok(Toolchain::DebianBuildStd)
    } else {
        Err(missing)
    }
}

/// Runs the setup script with bash; its output goes to stderr (stdout names programs).
fn run_setup() -> anyhow::Result<()> {
    let status = Command::new("bash")
        .arg("-c")
        .arg(SETUP_SCRIPT)
        .arg("setup-guest-toolchain.sh")
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .context("failed to run bash for the setup script")?;
    if !status.success() {
        bail!("the setup script (scripts/setup-guest-toolchain.sh) failed ({status})");
    }
    Ok(())
}

/// `scripts/setup-python-guest.sh`, which installs componentize-py (through the link in
/// `host/scripts/`).
const PYTHON_SETUP_SCRIPT: &str = include_str!("../scripts/setup-python-guest.sh");

/// The WIT package a Python program is built against.
const WIT: &str = include_str!("../wit/process.wit");

/// The Python guest package (`python/wasmproc/`, through the link `host/python`).
const PYTHON_PACKAGE: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../python/wasmproc/__init__.py"),
    ),
    ("_guest.py", include_str!("../python/wasmproc/_guest.py")),
    ("_host.py", include_str!("../python/wasmproc/_host.py")),
    ("_share.py", include_str!("../python/wasmproc/_share.py")),
    (
        "connection.py",
        include_str!("../python/wasmproc/connection.py"),
    ),
    (
        "managers.py",
        include_str!("../python/wasmproc/managers.py"),
    ),
    ("pool.py", include_str!("../python/wasmproc/pool.py")),
    ("process.py", include_str!("../python/wasmproc/process.py")),
    ("queues.py", include_str!("../python/wasmproc/queues.py")),
    (
        "sharedctypes.py",
        include_str!("../python/wasmproc/sharedctypes.py"),
    ),
    (
        "synchronize.py",
        include_str!("../python/wasmproc/synchronize.py"),
    ),
];

/// Builds the Python program whose main script is `script` into a component at `output`
/// (default: `script` with the extension `.wasm`) with componentize-py, which the setup
/// script installs when it is missing. The script's directory is on the program's Python
/// path, so that the modules beside it are built in too. Returns the component's path.
pub fn build_python(script: &Path, output: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !script.is_file() {
        bail!("{}: no such file", script.display());
    }
    let module = script
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the main script's name must be a Python module name (letters, digits, _)",
                script.display()
            )
        })?
        .to_string();
    let script_dir = script
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .canonicalize()
        .with_context(|| format!("failed to resolve the directory of {}", script.display()))?;
    let output = match output {
        Some(o) => o.to_path_buf(),
        None => script.with_extension("wasm"),
    };

    let componentize_py = python_setup()?;

    // The package, the WIT and the app module componentize-py starts from, in a private
    // directory for this build.
    let work = tempfile::Builder::new()
        .prefix("wasmproc-python-build")
        .tempdir()
        .context("failed to make a temporary directory")?;
    let package = work.path().join("python").join("wasmproc");
    std::fs::create_dir_all(&package).context("failed to write the Python package")?;
    for (name, text) in PYTHON_PACKAGE {
        std::fs::write(package.join(name), text).context("failed to write the Python package")?;
    }
    let wit = work.path().join("wit");
    std::fs::create_dir_all(&wit).context("failed to write the WIT package")?;
    std::fs::write(wit.join("process.wit"), WIT).context("failed to write the WIT package")?;
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).context("failed to write the app module")?;
    std::fs::write(
        app.join("wasmproc_app_main.py"),
        format!(
            "import wasmproc._guest as _guest\n_guest.prepare({module:?})\nGuest = _guest.Guest\n"
        ),
    )
    .context("failed to write the app module")?;

    let status = Command::new(&componentize_py)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "program", "componentize", "-p"])
        .arg(&app)
        .arg("-p")
        .arg(work.path().join("python"))
        .arg("-p")
        .arg(&script_dir)
        .arg("wasmproc_app_main")
        .arg("-o")
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("failed to run {}", componentize_py.display()))?;
    if !status.success() {
        bail!("componentize-py failed ({status}); its messages are above");
    }
    Ok(output)
}

/// Runs the Python setup script (idempotent; installs componentize-py when missing) and
/// returns the componentize-py it names.
fn python_setup() -> anyhow::Result<PathBuf> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(PYTHON_SETUP_SCRIPT)
        .arg("setup-python-guest.sh")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("failed to run bash for the setup script")?;
    if !out.status.success() {
        bail!(
            "the setup script (scripts/setup-python-guest.sh) failed ({}); componentize-py is \
             needed to build Python programs",
            out.status
        );
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        bail!("the setup script (scripts/setup-python-guest.sh) named no componentize-py");
    }
    Ok(PathBuf::from(path))
}
