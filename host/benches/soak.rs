//! The soak command: many start+join cycles on one host, under each backend, with the host's
//! resident memory, threads and open descriptors printed at the start and the end; under
//! `native`, the zombies and orphans left, also after a host killed with SIGKILL. Then the
//! attacks of hostile guests, each for many rounds on one host under the default limits (a
//! spawn bomb; 80 creates of 60 MiB never started), with the host's peak resident memory
//! against a stated bound; the spawn bomb's time to refusal; and how long the OS processes
//! of a host killed mid-bomb outlive it. Last, `rounds` rounds of a queue's producers and
//! consumers killed with SIGKILL mid-put and mid-get (`sync_queue_kill`): every item whole,
//! none delivered twice.
//!
//! `cargo bench -p wasmproc --bench soak -- [CYCLES] [ROUNDS]` (defaults 100000 and 1000).
//! `SOAK_BACKENDS` (default `wasm,native`) names the backends to soak and attack, for
//! a run split over several sittings; CYCLES 0 leaves the start+join soak out.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;
use wasmproc::{BackendKind, Config, ExitStatus, Host, OutputMode};
use wasmproc_tests::{
    DEMO, HOSTILE_CREATE, HOSTILE_SPAWNBOMB, LIFELINE_TREE, SYNC_QUEUE_KILL, descendants, running,
};

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

/// Resets this process's peak resident memory (`VmHWM`) to its current one.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `rounds` runs of the guest at `path` on one host of `backend` under the default limits
/// (output captured); `bound_mib` is the host's peak resident memory it must stay under.
/// A host of `backend` under the default limits, capturing its processes' output.
fn capturing_host(backend: BackendKind) -> Host {
    Host::new(Config {
        backend,
        output: OutputMode::Capture,
        native_exe: Some(env!("CARGO_BIN_EXE_wasmproc").into()),
        ..Config::default()
    })
    .expect("host")
}

/// `rounds` rounds of `sync_queue_kill` in one run: 3 producers and 2 consumers of one
/// queue killed at arbitrary points of their puts and gets each round.
fn queue_kill(backend: BackendKind, rounds: u64) {
    let host = capturing_host(backend);
    let program = host.load(SYNC_QUEUE_KILL).expect("program");
    let t = Instant::now();
    let run = host.run_main(&program, &[rounds.to_string()]).expect("run");
    let main = run
        .process("MainProcess")
        .map(|c| String::from_utf8_lossy(&c.stdout()).into_owned())
        .unwrap_or_default();
    let expected = format!("{rounds} rounds: every item whole, none twice, the queue works on\n");
    let stderr = run
        .process("MainProcess")
        .map(|c| String::from_utf8_lossy(&c.stderr()).into_owned())
        .unwrap_or_default();
    println!(
        "{:<6} queue producers and consumers killed: {rounds} rounds in {:.1} s, {}",
        backend.as_str(),
        t.elapsed().as_secs_f64(),
        if run.status == ExitStatus::SUCCESS && main == expected {
            "every item whole, none twice".to_string()
        } else {
            format!("FAILED: {:?}: {main}{stderr}", run.status)
        }
    );
}

fn attack(backend: BackendKind, label: &str, path: &str, rounds: u64, bound_mib: u64) {
    let host = capturing_host(backend);
    let program = host.load(path).expect("program");
    reset_peak();
    let before = usage();
    let t = Instant::now();
    let (mut failures, mut first, mut slowest) = (0, None, 0f64);
    for _ in 0..rounds {
        let round = Instant::now();
        let run = host.run_main(&program, &[]).expect("run");
        let took = round.elapsed().as_secs_f64();
        slowest = slowest.max(took);
        if std::env::var_os("SOAK_ROUNDS_VERBOSE").is_some() {
            println!("       round: {took:.2} s, rss {} KiB", usage().rss_kib);
        }
        let main = run
            .process("MainProcess")
            .map(|c| String::from_utf8_lossy(&c.stdout()).into_owned())
            .unwrap_or_default();
        let ok = run.status == ExitStatus::SUCCESS
            && match label {
                "spawn bomb" => {
                    main.contains("main refused after") && main.ends_with("main survived\n")
                }
                _ => main.contains("sibling exitcode: Some(0)"),
            };
        if !ok {
            failures += 1;
            if failures == 1 {
                println!("       a failed round: {:?}: {main}", run.status);
            }
        }
        first.get_or_insert_with(|| {
            (
                usage().rss_kib,
                main.lines().next().unwrap_or("").to_string(),
            )
        });
    }
    let elapsed = t.elapsed().as_secs_f64();
    let after = usage();
    let peak = status_field("VmHWM:");
    let (rss_first, line) = first.unwrap_or_default();
    println!(
        "{:<6} {label}: {rounds} rounds in {elapsed:.1} s ({:.2} s each, slowest {slowest:.2} s), \
         {failures} failed",
        backend.as_str(),
        elapsed / rounds.max(1) as f64
    );
    println!("       first round's main: {line}");
    println!(
        "       host rss: {} KiB before, {rss_first} KiB after the first round, {} KiB after \
         the last; peak {peak} KiB -> {} (bound: {bound_mib} MiB)",
        before.rss_kib,
        after.rss_kib,
        if peak < bound_mib * 1024 {
            "within"
        } else {
            "NOT WITHIN"
        }
    );
    println!(
        "       threads {} -> {}, fds {} -> {}; wasmproc __child processes alive after: {}",
        before.threads,
        after.threads,
        before.fds,
        after.fds,
        native_children_alive().len()
    );
}

/// `runs` spawn bombs under the CLI's default limits on `backend`: the time from the
/// host's start to main's refusal, and to the host's exit.
fn bomb_refusal_times(backend: BackendKind, runs: usize) {
    let (mut refused, mut ended) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let mut host = Command::new(env!("CARGO_BIN_EXE_wasmproc"))
            .args(["run", "--backend", backend.as_str(), HOSTILE_SPAWNBOMB])
            .stdout(Stdio::piped())
            .spawn()
            .expect("wasmproc");
        let lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
        for line in lines.map_while(Result::ok) {
            if line.starts_with("main refused after") {
                refused.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        host.wait().expect("wait");
        ended.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let show = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!(
            "median {:.0} ms, max {:.0} ms",
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
            v.last().copied().unwrap_or(f64::NAN)
        )
    };
    println!(
        "{:<6} spawn bomb, default limits, {runs} runs: main refused after {} of {} runs; host exited: {}",
        backend.as_str(),
        show(&mut refused),
        refused.len(),
        show(&mut ended)
    );
}

/// `runs` native hosts killed with SIGKILL while a spawn bomb holds the run full under the
/// default limits: how long until none of the host's OS processes is left running.
fn killed_bomb_hosts(runs: usize) {
    let mut times = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..runs {
        let mut host = Command::new(env!("CARGO_BIN_EXE_wasmproc"))
            .args([
                "run",
                "--backend",
                "native",
                HOSTILE_SPAWNBOMB,
                "--",
                "hold",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("wasmproc");
        let mut lines = BufReader::new(host.stdout.take().expect("stdout")).lines();
        while let Some(Ok(line)) = lines.next() {
            if line == "holding" {
                break;
            }
        }
        let tree = descendants(host.id());
        sizes.push(tree.len());
        host.kill().expect("SIGKILL");
        let t = Instant::now();
        host.wait().expect("wait");
        while t.elapsed().as_secs() < 30 && tree.iter().any(|&p| running(p)) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "native host killed with SIGKILL mid-bomb, {runs} runs: trees of {sizes:?} OS processes \
         gone after median {:.0} ms, max {:.0} ms (bound: 1000 ms)",
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        times.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let cycles = numbers.next().unwrap_or(100_000);
    let rounds = numbers.next().unwrap_or(1_000);
    let backends: Vec<BackendKind> = std::env::var("SOAK_BACKENDS")
        .unwrap_or_else(|_| "wasm,native".into())
        .split(',')
        .map(|b| match b.trim() {
            "wasm" => BackendKind::Wasm,
            "native" => BackendKind::Native,
            other => {
                panic!("SOAK_BACKENDS: unknown backend '{other}' (known: wasm, native)")
            }
        })
        .collect();
    let native = backends.contains(&BackendKind::Native);
    if cycles > 0 {
        println!("soak: {cycles} start+join cycles per backend (a no-op child each)");
        for &backend in &backends {
            soak(backend, cycles);
        }
        if native {
            killed_host_leaves_no_orphans();
        }
    }
    println!("attacks: {rounds} rounds each on one host, default limits");
    for &backend in &backends {
        attack(backend, "spawn bomb", HOSTILE_SPAWNBOMB, rounds, 2048);
        attack(
            backend,
            "80 creates of 60 MiB",
            HOSTILE_CREATE,
            rounds,
            1536,
        );
        bomb_refusal_times(backend, 5);
    }
    if native {
        killed_bomb_hosts(5);
    }
    for &backend in &backends {
        queue_kill(backend, rounds);
    }
    println!(
        "wasmproc __child processes alive at the end: {}",
        native_children_alive().len()
    );
}
