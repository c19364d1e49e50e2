//! The guest programs of the integration tests, built by `build.rs`: one `&str` constant
//! with the path of each program's `.wasm`, and a `foreach_<suite>!` macro per suite.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The `wasmproc` executable the benchmarks' native backend runs: `target/release/wasmproc`,
/// next to the directory of the running bench (`target/release/deps/<bench>-<hash>`). Why
/// not, when it is missing.
pub fn native_exe() -> Result<std::path::PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let exe = me
        .parent()
        .and_then(std::path::Path::parent)
        .map(|dir| dir.join("wasmproc"))
        .ok_or_else(|| format!("{} has no grandparent directory", me.display()))?;
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!(
            "{} does not exist (build it with `cargo build --release -p wasmproc`, as \
             scripts/bench.sh does)",
            exe.display()
        ))
    }
}
