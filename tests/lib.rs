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

/// The load average (1, 5 and 15 minutes), as the benchmarks print it.
pub fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Prints the load average at a benchmark's start, with a warning when the machine is busy
/// (the 1-minute load above half of `cpus`).
pub fn print_load_at_start(cpus: usize) {
    if let Some(l) = load_average() {
        let busy = l
            .split(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|l1| l1 > 0.5 * cpus as f64);
        println!(
            "load average (1/5/15 min) at start: {l}{}",
            if busy {
                "  -- the machine is busy; the figures will be noisy"
            } else {
                ""
            }
        );
    }
}

/// `key value` lines, as the benchmarks' guest programs, CPython scripts and helper
/// processes print them.
pub fn key_values(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(' ')?;
            Some((k.to_string(), v.trim().to_string()))
        })
        .collect()
}
