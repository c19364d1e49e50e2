//! A plugin host embedding wasmproc. It loads plugins (guest components) and runs their
//! jobs as sandboxed processes with typed arguments, typed results and limits of their
//! own, watches their lifecycle events, and gives them a
//! host function of its own (a linker hook; under `native` its own executable runs the
//! children, with the same hooks). It reads one job's output as it is
//! written, and tells a job that a limit ended apart from one that exited. It goes on
//! unharmed when a hostile plugin exhausts its memory.
//!
//! `cargo run --release -p wasmproc --example plugin_host [wasm|native]` (both when none is
//! named); `cargo test --release -p wasmproc --example plugin_host` runs it as a test. The
//! plugins are the test suite's guest programs (crate `wasmproc-tests`): `demo` (its
//! `exits(code)` job), `process_result` (`square(x) -> x * x`), `library_hooks` (`ask`,
//! which calls the host function), `hostile_loop` (`ticker(n)`) and `hostile_memory`
//! (`bomb`).

use anyhow::{Context, ensure};
use std::io::BufRead;
use wasmproc::{
    BackendKind, Config, Hooks, Host, LIMIT_EXIT_CODE, LimitHit, OutputMode, ProcessEvent,
    StoreData,
};
use wasmproc_tests::{DEMO, HOSTILE_LOOP, HOSTILE_MEMORY, LIBRARY_HOOKS, PROCESS_RESULT};

/// The host function plugins may import: `test:hooks/host-api.answer(question)`, the
/// question's length times 100 plus how many questions this process has asked.
fn hooks() -> Hooks {
    Hooks::default()
        .linker(|linker| {
            linker.instance("test:hooks/host-api")?.func_wrap(
                "answer",
                |mut store: wasmproc::wasmtime::StoreContextMut<'_, StoreData>, (q,): (String,)| {
                    let asked = store.data_mut().extension_mut::<u32>();
                    let asked =
                        asked.ok_or_else(|| wasmproc::wasmtime::Error::msg("no counter"))?;
                    *asked += 1;
                    Ok((q.len() as u32 * 100 + *asked,))
                },
            )
        })
        .store(|store| {
            store.data_mut().set_extension(0u32);
            Ok(())
        })
}

fn run(backend: BackendKind) -> anyhow::Result<()> {
    let mut config = Config {
        backend,
        output: OutputMode::Capture,
        // Native children run this very executable (see `main`), with the same hooks.
        native_exe: Some(std::env::current_exe()?),
        hooks: hooks(),
        ..Config::default()
    };
    // Every plugin process gets at most 256 MiB of memory (the untrusted one less: below)
    // and 10 s of wall time.
    config
        .limits
        .set("memory", "256MiB")
        .map_err(anyhow::Error::msg)?;
    config
        .limits
        .set("wall_ms", "10000")
        .map_err(anyhow::Error::msg)?;
    let host = Host::new(config)?;
    // Every start and end, as it happens.
    let mut events = host.events(1024);
    let jobs = host.load(DEMO)?;
    let ticker = host.load(HOSTILE_LOOP)?;
    let hostile = host.load(HOSTILE_MEMORY)?;
    let math = host.load(PROCESS_RESULT)?;
    let asking = host.load(LIBRARY_HOOKS)?;

    // A hostile plugin, started first with a memory limit of its own: it allocates until
    // that limit ends it.
    let bomb = host
        .process(&hostile, "bomb")
        .name("untrusted")
        .limit("memory", "64MiB")
        .start()?;
    // Jobs with typed arguments: each exits with the code it is given.
    let codes = [0i32, 3, 7, 42];
    let started = codes
        .iter()
        .map(|code| host.process(&jobs, "exits").arg(code).start())
        .collect::<Result<Vec<_>, _>>()?;
    // Jobs with typed results: each returns the square of its argument.
    let squares = (1..=4u64)
        .map(|x| host.process(&math, "square").arg(&x).start())
        .collect::<Result<Vec<_>, _>>()?;
    // A job that calls the host's own function.
    let asks = host.process(&asking, "ask").start()?;
    // One job's output, line by line as it writes it.
    let streamed = host.process(&ticker, "ticker").arg(&3u32).start()?;
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(streamed.stdout_reader()?).lines() {
        let line = line?;
        println!("[{}] ticker says: {line}", backend.as_str());
        lines.push(line);
    }
    ensure!(
        lines == ["tick 1", "tick 2", "tick 3"],
        "ticker wrote {lines:?}"
    );

    for (p, code) in started.iter().zip(codes) {
        p.join(None)?;
        ensure!(
            p.exitcode()? == Some(code),
            "job {code}: {:?}",
            p.exitcode()?
        );
        ensure!(p.limit_hit()?.is_none(), "job {code} was ended by a limit");
    }
    let mut results = Vec::new();
    for p in &squares {
        p.join(None)?;
        results.push(
            p.result::<u64>()?
                .context("a square job returned nothing")?,
        );
    }
    ensure!(results == [1, 4, 9, 16], "the squares: {results:?}");
    println!("[{}] square jobs returned {results:?}", backend.as_str());
    asks.join(None)?;
    let said = String::from_utf8(asks.stdout()?)?;
    ensure!(said == "child asks: 501\n", "the asking job said {said:?}");
    println!(
        "[{}] the host function answered: {}",
        backend.as_str(),
        said.trim_end()
    );
    bomb.join(None)?;
    ensure!(
        bomb.exitcode()? == Some(i32::from(LIMIT_EXIT_CODE)),
        "the bomb: {:?}",
        bomb.exitcode()?
    );
    ensure!(
        bomb.limit_hit()? == Some(LimitHit::Memory(64 << 20)),
        "the bomb's end: {:?}",
        bomb.limit_hit()?
    );
    // What the event stream told of the hostile plugin.
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.name() == "untrusted" {
            seen.push(event);
        }
    }
    ensure!(
        matches!(
            seen.as_slice(),
            [
                ProcessEvent::Started { .. },
                ProcessEvent::Ended {
                    limit: Some(LimitHit::Memory(_)),
                    ..
                }
            ]
        ),
        "the events of the hostile plugin: {seen:?}"
    );
    println!(
        "[{}] jobs exited with {codes:?}; the hostile plugin was ended by `{}` ({})",
        backend.as_str(),
        bomb.limit_hit()?
            .map(|hit| hit.to_string())
            .unwrap_or_default(),
        String::from_utf8_lossy(&bomb.stderr()?).trim_end()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // A native child of this host: this executable, run as `__child`.
    if std::env::args().nth(1).as_deref() == Some(wasmproc::CHILD_SUBCOMMAND) {
        std::process::exit(i32::from(wasmproc::native_child_main_with(hooks())));
    }
    let backends = match std::env::args().nth(1) {
        Some(name) => vec![name.parse().map_err(anyhow::Error::msg)?],
        None => vec![BackendKind::Wasm, BackendKind::Native],
    };
    for backend in backends {
        run(backend).with_context(|| format!("the {} backend", backend.as_str()))?;
    }
    Ok(())
}
