//! One process's guest code, from its entry to the status it ended with.

use super::Engine;
use super::state::{MemoryLimiter, ProcState};
use crate::config::Limits;
use crate::exit::{ExitStatus, GuestExit, LimitHit};
use crate::model::{Entry, ProcessCtx};
use crate::program::Program;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder};

/// What a guest's entry returned: `Err(message)` is a failure it reported itself (the
/// message, if not empty, goes to its stderr); a wasmtime error is a trap or an exit.
type Returned = wasmtime::Result<Result<(), String>>;

/// Runs the guest code of process `ctx` from `entry` in a store of its own, of the engine
/// its program was compiled for (one of `_engine`'s).
pub(super) async fn run_guest(
    _engine: Arc<Engine>,
    ctx: Arc<ProcessCtx>,
    entry: Entry,
) -> ExitStatus {
    let Some(program) = ctx.program().cloned() else {
        ctx.output()
            .write_stderr("wasmproc: internal error: process has no program\n");
        return ExitStatus::FAILURE;
    };
    let wasi = match wasi_ctx(&ctx, &program, &entry) {
        Ok(wasi) => wasi,
        Err(message) => {
            ctx.output().write_stderr(&message);
            return ExitStatus::FAILURE;
        }
    };
    let mut limits = ctx.limits().clone();
    if matches!(entry, Entry::Main(_)) {
        // Time limits are for child processes; the main process is bounded by whoever runs
        // the host.
        limits.cpu_ms = None;
        limits.wall_ms = None;
    }
    // The engine of programs with much initial data makes memories with wasmtime's own
    // creator, which does not tell the count of kernel mappings of them.
    let tell_memory = program.inner().imaged;
    let mut store = new_store(program.wasmtime(), &ctx, wasi, &limits, tell_memory);
    if let Err(e) = ctx.host().config.hooks.on_store(&mut store) {
        ctx.output().write_stderr(&format!(
            "Process {}:\nthe embedder's store hook failed: {}\n",
            ctx.name(),
            crate::error::chain(&e)
        ));
        return ExitStatus::FAILURE;
    }
    let run = call_entry(&mut store, &program, &entry);
    let result: Returned = match limits.wall_ms {
        Some(wall_ms) => tokio::time::timeout(Duration::from_millis(wall_ms), run)
            .await
            .unwrap_or_else(|_| Err(wasmtime::Error::new(LimitHit::Wall(wall_ms)))),
        None => run.await,
    };
    let memory_hit = store.data().limiter.hit;
    drop(store);
    // The guest has written everything it will: its last partial lines go before any report
    // of the host's.
    ctx.output().end_lines();
    outcome(&ctx, &entry, result, memory_hit)
}

/// The WASI context of the process: its arguments, and nothing else unless granted.
fn wasi_ctx(ctx: &ProcessCtx, program: &Program, entry: &Entry) -> Result<WasiCtx, String> {
    let config = &ctx.host().config;
    let mut builder = WasiCtxBuilder::new();
    builder.arg(program.display_name());
    if let Entry::Main(args) = entry {
        builder.args(args);
        if config.main_stdin {
            builder.stdin(std::io::stdin());
        }
    }
    let grants = ctx.grants();
    builder
        .allow_tcp(grants.network)
        .allow_udp(grants.network)
        .allow_ip_name_lookup(grants.network);
    if grants.network {
        builder.inherit_network();
    }
    builder.envs(&grants.env);
    for dir in &grants.dirs {
        let perms = if dir.writable {
            wasmtime_wasi::FsPerms::ReadWrite
        } else {
            wasmtime_wasi::FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| {
                format!(
                    "Process {}: cannot open granted directory {}: {e}\n",
                    ctx.name(),
                    dir.host.display()
                )
            })?;
    }
    ctx.output().apply(&mut builder);
    Ok(builder.build())
}

/// wasmtime's own budget of bytes a guest may pass the host in one call, used when the
/// memory limit is smaller.
const DEFAULT_HOSTCALL_FUEL: u64 = 128 << 20;

/// The most a wasm32 linear memory can hold.
const WASM32_MEMORY: u64 = 4 << 30;

/// The bytes a guest may pass the host in one call (wasmtime's hostcall fuel): as many as its
/// linear memory may hold (never less than wasmtime's default), so that the host itself
/// checks every argument a guest can make, and refuses an oversized one with its own
/// `limit-exceeded` (`args`, `message`, ...). Only a call that names the same guest bytes
/// more than once can pass more; it ends the guest with wasmtime's trap.
fn hostcall_fuel(limits: &Limits) -> usize {
    let bytes = limits.memory.clamp(DEFAULT_HOSTCALL_FUEL, WASM32_MEMORY);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// The process's store: its memory limit, the bytes one host call may take from it, and an
/// epoch deadline at which it yields to the scheduler every tick and counts its CPU time.
fn new_store(
    engine: &wasmtime::Engine,
    ctx: &Arc<ProcessCtx>,
    wasi: WasiCtx,
    limits: &Limits,
    tell_memory: bool,
) -> Store<ProcState> {
    let tick_ms = ctx.host().config.epoch_tick_ms.max(1);
    let mut store = Store::new(
        engine,
        ProcState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: limits.memory,
                hit: None,
                tell_memory,
            },
            ticks: 0,
            ctx: Some(ctx.clone()),
            extension: None,
        },
    );
    store.limiter(|s| &mut s.limiter);
    store.set_hostcall_fuel(hostcall_fuel(limits));
    store.set_epoch_deadline(1);
    let cpu_ms = limits.cpu_ms;
    store.epoch_deadline_callback(move |mut cx| {
        let state = cx.data_mut();
        state.ticks += 1;
        if let Some(cpu_ms) = cpu_ms
            && state.ticks.saturating_mul(tick_ms) > cpu_ms
        {
            return Err(wasmtime::Error::new(LimitHit::Cpu(cpu_ms)));
        }
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store
}

/// Instantiates the program and calls `entry`.
async fn call_entry(store: &mut Store<ProcState>, program: &Program, entry: &Entry) -> Returned {
    let inner = program.inner();
    match entry {
        Entry::Main(_) => match (inner.guest.as_ref(), inner.command.as_ref()) {
            // A program of the SDK: its main starts like any process.
            (Some(pre), _) => {
                let guest = pre.instantiate_async(&mut *store).await?;
                guest
                    .wasmproc_process_guest()
                    .call_run_main(&mut *store)
                    .await
            }
            // A plain WASI command.
            (None, Some(pre)) => {
                let command = pre.instantiate_async(&mut *store).await?;
                let r = command.wasi_cli_run().call_run(&mut *store).await?;
                Ok(r.map_err(|()| String::new()))
            }
            (None, None) => Ok(Err(format!(
                "program {} has no main (it does not export wasi:cli/run)",
                program.display_name()
            ))),
        },
        Entry::Target { name, args } => match inner.guest.as_ref() {
            Some(pre) => {
                let guest = pre.instantiate_async(&mut *store).await?;
                guest
                    .wasmproc_process_guest()
                    .call_run_target(&mut *store, name, &args.bytes)
                    .await
            }
            None => Ok(Err(format!(
                "program {} has no targets (it was not built with wasmproc-guest)",
                program.display_name()
            ))),
        },
    }
}

/// The status a process ends with after its entry returned `result`, with what it reports
/// on its stderr.
fn outcome(
    ctx: &ProcessCtx,
    entry: &Entry,
    result: Returned,
    memory_hit: Option<LimitHit>,
) -> ExitStatus {
    match result {
        Ok(Ok(())) => ExitStatus::SUCCESS,
        Ok(Err(message)) => {
            if !message.is_empty() {
                let header = match entry {
                    Entry::Main(_) => String::new(),
                    Entry::Target { .. } => format!("Process {}:\n", ctx.name()),
                };
                ctx.output().write_stderr(&format!("{header}{message}\n"));
            }
            ExitStatus::FAILURE
        }
        Err(e) => {
            if let Some(hit) = memory_hit.or_else(|| e.downcast_ref::<LimitHit>().copied()) {
                ctx.core().record_limit(hit);
                ctx.output()
                    .write_stderr(&format!("Process {}: {hit}\n", ctx.name()));
                ExitStatus::Code(crate::config::LIMIT_EXIT_CODE)
            } else if let Some(GuestExit(status)) = e.downcast_ref::<GuestExit>() {
                *status
            } else if let Some(I32Exit(code)) = e.downcast_ref::<I32Exit>() {
                ExitStatus::from_exit_call(*code)
            } else {
                ctx.output().write_stderr(&format!(
                    "Process {}:\n{}\n",
                    ctx.name(),
                    trap_report(&e)
                ));
                ExitStatus::FAILURE
            }
        }
    }
}

/// What a trap's report on the process's stderr says: the reason, and the wasm backtrace
/// when `WASMPROC_BACKTRACE=1`.
fn trap_report(e: &wasmtime::Error) -> String {
    let mut report = e.root_cause().to_string();
    if std::env::var_os("WASMPROC_BACKTRACE").is_some_and(|v| v == "1")
        && let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>()
    {
        report.push_str(&format!("\n{bt}"));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostcall_fuel_covers_the_memory_limit() {
        let with_memory = |memory: u64| {
            hostcall_fuel(&Limits {
                memory,
                ..Limits::default()
            })
        };
        assert_eq!(with_memory(1 << 30), 1 << 30);
        assert_eq!(with_memory(16 << 20), 128 << 20);
        assert_eq!(with_memory(u64::MAX), 4 << 30);
    }
}
