//! The guest programs of the integration tests, built by `build.rs`: one `&str` constant
//! with the path of each program's `.wasm`, and a `foreach_<suite>!` macro per suite.

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// The `wasmproc` executable the native backend of the benchmarks and examples runs:
/// `target/release/wasmproc`, next to the directory of the running bench or example
/// (`target/release/deps/<bench>-<hash>`, `target/release/examples/<example>`). Why not,
/// when it is missing.
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

/// Whether process `pid` exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// The processes descended from `pid`, from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}
