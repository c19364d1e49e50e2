//! The soak command: many start+join cycles on one host, under each backend, with the host's
//! resident memory, threads and open descriptors printed at the start and the end; under
//! `native`, the zombies and orphans left, also after a host killed with SIGKILL.
//!
//! `cargo bench -p wasmproc --bench soak -- [CYCLES]` (default 100000).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;
use wasmproc::{BackendKind, Config, Host};
use wasmproc_tests::{DEMO, LIFELINE_TREE};

fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Usage {
    rss_kib: u64,
    threads: u64,
    fds: usize,
}

fn usage() -> Usage {
    Usage {
        rss_kib: status_field("VmRSS:"),
        threads: status_field("Threads:"),
        fds: std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0),
    }
}

/// Processes whose parent is `ppid`, and how many of them are zombies.
fn children_of(ppid: u32) -> (usize, usize) {
    let (mut all, mut zombies) = (0, 0);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            all += 1;
            if fields[0] == "Z" {
                zombies += 1;
            }
        }
    }
    (all, zombies)
}

/// Live `wasmproc __child` processes anywhere on the machine.
fn native_children_alive() -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
        if !zombie && cmdline.split(|&b| b == 0).any(|a| a == b"__child") {
            pids.push(pid);
        }
    }
    pids
}

fn soak(backend: BackendKind, cycles: u64) {
    let host = Host::new(Config {
        backend,
        native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
        ..Config::default()
    })
    .expect("host");
    let program = host.load(DEMO).expect("demo program");
    // Warm up so that the first figures include the steady-state allocations.
    for _ in 0..100 {
        let p = host.process(&program, "returns").start().expect("start");
        p.join(None).expect("join");
    }
    let before = usage();
    let t = Instant::now();
    let mut failures = 0;
    for i in 0..cycles {
        let p = host.process(&program, "returns").start().expect("start");
        p.join(None).expect("join");
        if p.exitcode().expect("exitcode") != Some(0) {
            failures += 1;
        }
        if (i + 1) % (cycles / 4).max(1) == 0 {
            let u = usage();
            println!(
                "  {:>7} cycles: rss {:>7} KiB, threads {:>3}, fds {:>4}",
                i + 1,
                u.rss_kib,
                u.threads,
                u.fds
            );
        }
    }
    let elapsed = t.elapsed();
    let after = usage();
    let (children, zombies) = children_of(std::process::id());
    println!(
        "{:<6} {cycles} cycles in {:.1} s ({:.1} µs each), {failures} not exit code 0",
        backend.as_str(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / cycles as f64
    );
    println!(
        "       start: rss {} KiB, threads {}, fds {}",
        before.rss_kib, before.threads, before.fds
    );
    println!(
        "       end:   rss {} KiB, threads {}, fds {}",
        after.rss_kib, after.threads, after.fds
    );
    let growth = after.rss_kib as i64 - before.rss_kib as i64;
    let flat =
        growth < 32 * 1024 && after.threads <= before.threads + 2 && after.fds <= before.fds + 2;
    println!(
        "       growth: rss {growth:+} KiB, threads {:+}, fds {:+} -> {} (bound: rss < 32 MiB, threads and fds within 2)",
        after.threads as i64 - before.threads as i64,
        after.fds as i64 - before.fds as i64,
        if flat { "flat" } else { "NOT FLAT" }
    );
    println!("       child processes left: {children} ({zombies} zombies)");
}

fn killed_host_leaves_no_orphans() {
    let mut host = Command::new(env!("CARGO_BIN_EXE_wasmproc"))
        .args(["run", "--backend", "native", LIFELINE_TREE])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wasmproc");
    let mut lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
    let mut pids = Vec::new();
    while pids.len() < 2 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(pid) = line.rsplit(' ').next().and_then(|p| p.parse::<u32>().ok()) {
            pids.push(pid);
        }
    }
    host.kill().expect("SIGKILL");
    host.wait().expect("wait");
    let t = Instant::now();
    while t.elapsed().as_secs() < 10 && pids.iter().any(|p| native_children_alive().contains(p)) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| native_children_alive().contains(p))
        .collect();
    println!(
        "native host killed with SIGKILL: tree of {} processes, {} left after {:.0} ms",
        pids.len(),
        left.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn main() {
    let cycles: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    println!("soak: {cycles} start+join cycles per backend (a no-op child each)");
    soak(BackendKind::Wasm, cycles);
    soak(BackendKind::Native, cycles);
    killed_host_leaves_no_orphans();
    println!(
        "wasmproc __child processes alive at the end: {}",
        native_children_alive().len()
    );
}
