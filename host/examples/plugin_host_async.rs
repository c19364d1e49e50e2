//! The plugin host of `plugin_host.rs` in async code. Inside a tokio runtime it starts 1,000
//! jobs from tokio tasks, awaits their ends, and waits for any of several processes. It then
//! drops the `Host` inside the runtime.
//!
//! `cargo run --release -p wasmproc --example plugin_host_async [wasm|native]` (both when
//! none is named); `cargo test --release -p wasmproc --example plugin_host_async` runs it.

use anyhow::{Context, ensure};
use std::sync::Arc;
use std::time::Duration;
use wasmproc::{BackendKind, Config, Host, OutputMode};
use wasmproc_tests::DEMO;

/// How many jobs run.
const JOBS: i32 = 1_000;

async fn run(backend: BackendKind) -> anyhow::Result<()> {
    let host = Arc::new(Host::new(Config {
        backend,
        output: OutputMode::Capture,
        native_exe: Some(wasmproc_tests::native_exe().map_err(anyhow::Error::msg)?),
        ..Config::default()
    })?);
    let program = host.load(DEMO)?;
    // 1,000 jobs, each started and awaited by a task of its own, at most 64 at a time (a
    // run has a `processes` limit; under `native`, derived from the machine); each exits
    // with its number modulo 256.
    let running = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..JOBS {
        let (host, program, running) = (host.clone(), program.clone(), running.clone());
        tasks.spawn(async move {
            let _permit = running.acquire_owned().await?;
            let p = host.process(&program, "exits").arg(&i).start()?;
            p.join_async(None).await?;
            anyhow::Ok((i, p.exitcode()?))
        });
    }
    let mut done = 0;
    while let Some(ended) = tasks.join_next().await {
        let (i, code) = ended??;
        ensure!(code == Some(i % 256), "job {i} exited with {code:?}");
        done += 1;
    }
    ensure!(done == JOBS, "{done} jobs ended");
    // `multiprocessing.connection.wait`: the first of two to end.
    let quick = host.process(&program, "returns").start()?;
    let asleep = host.process(&program, "sleeps").start()?;
    let ready = host
        .wait_async(&[&asleep, &quick], Some(Duration::from_secs(10)))
        .await?;
    ensure!(ready == [1], "ready: {ready:?}");
    asleep.kill()?;
    asleep.join_async(None).await?;
    println!(
        "[{}] {done} jobs awaited from tokio tasks; wait() saw the quick one first",
        backend.as_str()
    );
    // Dropped here, inside the runtime.
    drop((quick, asleep, program));
    drop(host);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let backends = match std::env::args().nth(1) {
        Some(name) => vec![name.parse().map_err(anyhow::Error::msg)?],
        None => vec![BackendKind::Wasm, BackendKind::Native],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for backend in backends {
        runtime
            .block_on(run(backend))
            .with_context(|| format!("the {} backend", backend.as_str()))?;
    }
    Ok(())
}
