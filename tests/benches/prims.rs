//! The primitives benchmark: what one operation of each sync primitive of `multiprocessing`
//! beyond `Queue` and `Pool` costs, on both backends, next to CPython 3's `multiprocessing`
//! in the same run. Run it with `scripts/bench.sh prims`.
//!
//! The guest `tests/programs/src/bin/bench_prims.rs` and `scripts/bench_cpython_prims.py`
//! time N operations each: `lock` (an uncontended `Lock` acquire and release), `value`
//! (`with v.get_lock(): v.value += 1`), `simplequeue` (a put then a get), `joinable` (put,
//! get, `task_done`; then `join`) and `dict` (`d[k] = d[k] + 1` on a managed dictionary;
//! CPython's timing leaves out starting its manager), all in one child process;
//! `condition` (one hand-over between two processes taking turns under a `Condition`),
//! `barrier` (one round of a two-party `Barrier`) and `event` (one hand-over between two
//! processes through two `Event`s: one sets, the other wakes and clears). Rounds alternate
//! wasm, native and CPython; the figures are
//! medians over the rounds, in microseconds per operation, with CPython's time divided by
//! ours (above 1: faster than CPython). It prints figures only; nothing fails on speed.
//!
//! Environment: `WASMPROC_BENCH_PRIMS_N` (operations per measurement, default 5,000),
//! `WASMPROC_BENCH_PRIMS_ROUNDS` (default 3), `WASMPROC_BENCH_PRIMS` (the operations,
//! comma-separated; default all eight).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use wasmproc::{BackendKind, Config, ExitStatus, Host, Limits, OutputMode, Program};
use wasmproc_tests::BENCH_PRIMS;

const OPS: &[&str] = &[
    "lock",
    "value",
    "simplequeue",
    "joinable",
    "condition",
    "barrier",
    "event",
    "dict",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// Microseconds per operation from `op_s` and `ops` lines.
fn micros(kv: &BTreeMap<String, String>) -> Result<f64, String> {
    let get = |k: &str| -> Result<f64, String> {
        kv.get(k)
            .ok_or_else(|| format!("no `{k}` printed: {kv:?}"))?
            .parse()
            .map_err(|e| format!("`{k}` is not a number: {e}"))
    };
    Ok(get("op_s")? / get("ops")? * 1e6)
}

fn host(native: bool) -> Result<(Host, Program), String> {
    let base = Config {
        output: OutputMode::Capture,
        ..Config::default()
    };
    let config = if native {
        Config {
            backend: BackendKind::Native,
            native_exe: Some(wasmproc_tests::native_exe()?),
            ..base
        }
    } else {
        base
    };
    let config = Config {
        limits: Limits {
            wall_ms: Some(300_000),
            ..config.limits
        },
        ..config
    };
    let host = Host::new(config).map_err(|e| format!("cannot create a host: {e}"))?;
    let program = host
        .load(BENCH_PRIMS)
        .map_err(|e| format!("cannot load {BENCH_PRIMS}: {e}"))?;
    Ok((host, program))
}

fn guest(host: &Host, program: &Program, op: &str, n: usize) -> Result<f64, String> {
    let run = host
        .run_main(program, &[op.to_string(), n.to_string()])
        .map_err(|e| format!("run_main: {e}"))?;
    let main = run
        .process("MainProcess")
        .ok_or("no output of MainProcess")?;
    let out = String::from_utf8_lossy(&main.stdout()).into_owned();
    if run.status != ExitStatus::SUCCESS {
        let err = String::from_utf8_lossy(&main.stderr()).into_owned();
        return Err(format!("ended with {:?}: {out:?} {err:?}", run.status));
    }
    micros(&wasmproc_tests::key_values(&out))
}

fn cpython(root: &Path, op: &str, n: usize) -> Result<f64, String> {
    let out = Command::new("python3")
        .arg(root.join("scripts/bench_cpython_prims.py"))
        .args([op.to_string(), n.to_string()])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    micros(&wasmproc_tests::key_values(&text))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("WASMPROC_BENCH_PRIMS_N", 5_000).max(1);
    let rounds = env_usize("WASMPROC_BENCH_PRIMS_ROUNDS", 3).max(1);
    let ops: Vec<String> = std::env::var("WASMPROC_BENCH_PRIMS")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_else(|_| OPS.iter().map(|s| s.to_string()).collect());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    wasmproc_tests::print_load_at_start(2);
    let wasm = host(false);
    let native = host(true);
    for (label, h) in [("wasm", &wasm), ("native", &native)] {
        if let Err(e) = h {
            println!("{label}: skipped: {e}");
        }
    }
    println!("{n} operations per measurement, {rounds} rounds; microseconds per operation");
    println!("| operation | wasm | native | CPython | CPython / wasm | CPython / native |");
    println!("|---|---|---|---|---|---|");
    for op in &ops {
        let (mut w, mut nat, mut py) = (Vec::new(), Vec::new(), Vec::new());
        let mut errors = Vec::new();
        for _ in 0..rounds {
            for (h, into) in [(&wasm, &mut w), (&native, &mut nat)] {
                if let Ok((host, program)) = h {
                    match guest(host, program, op, n) {
                        Ok(us) => into.push(us),
                        Err(e) => errors.push(e),
                    }
                }
            }
            match cpython(&root, op, n) {
                Ok(us) => py.push(us),
                Err(e) => errors.push(e),
            }
        }
        let (w, nat, py) = (median(w), median(nat), median(py));
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let ratio = |ours: Option<f64>| match (ours, py) {
            (Some(o), Some(p)) => format!("{:.2}×", p / o),
            _ => "-".to_string(),
        };
        println!(
            "| {op} | {} | {} | {} | {} | {} |",
            cell(w),
            cell(nat),
            cell(py),
            ratio(w),
            ratio(nat)
        );
        for e in errors {
            println!("  {op}: {e}");
        }
    }
}
