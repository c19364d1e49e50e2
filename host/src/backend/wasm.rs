//! The `wasm` backend: every process is a fresh instance of the program in its own
//! [`Store`], run as a task on the host's tokio runtime (one fiber per process).
//!
//! A running guest yields to the scheduler at every epoch tick; `terminate`/`kill` drop the
//! task's future, which stops the guest at once, also while it waits inside a host call
//! (join, wait, or WASI's own sleep and poll, which are async here).

use crate::backend::{Backend, Control, SpawnRequest, Spawned};
use crate::error::{Error, ProcessError, chain};
use crate::exit::{ExitStatus, GuestExit, LimitHit, Signal};
use crate::model::{NewCtx, ProcessCtx, RunShared, Tree, supervise};
use crate::program::{Program, ProgramInner};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Precompiled, Store, UpdateDeadline};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Host-side bindings of `wit/process.wit`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "program",
        imports: {
            "wasmproc:process/process.create": async | trappable,
            "wasmproc:process/process.join": async | trappable,
            "wasmproc:process/sync.queue-try-put": trappable,
            "wasmproc:process/sync.queue-try-get": trappable,
            "wasmproc:process/sync.queue-try-put-small": trappable,
            "wasmproc:process/sync.queue-try-get-small": trappable,
            "wasmproc:process/sync": async | trappable,
            "wasmproc:process/process.wait": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

use crate::model::SyncHome;
use crate::sync::{LockKind, Registry, Request, Response};
use bindings::wasmproc::process::process as wit;
use bindings::wasmproc::process::sync as sync_wit;

/// A program's `wasmproc:process/guest` export, ready to instantiate.
pub(crate) type GuestPre = bindings::ProgramPre<ProcState>;
use bindings::wasmproc::process::types::{Error as WitError, ErrorKind as WitErrorKind};

/// Enforces the memory limit of one process (wasmtime's `ResourceLimiter`).
struct MemoryLimiter {
    limit: u64,
    hit: Option<LimitHit>,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            let hit = LimitHit::Memory(self.limit);
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real program.
        Ok(desired <= 1 << 20)
    }
}

/// The data of one process's [`Store`].
pub(crate) struct ProcState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    /// Scheduler ticks this process has run for (its CPU time, in ticks).
    ticks: u64,
    /// The process's model context; none only while a program is inspected at load time.
    ctx: Option<Arc<ProcessCtx>>,
}

impl WasiView for ProcState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The engine, linker and scheduler shared by all processes of a host.
pub(crate) struct WasmEngine {
    engine: Engine,
    linker: Linker<ProcState>,
    runtime: tokio::runtime::Handle,
    next_pid: AtomicU64,
}

impl WasmEngine {
    pub fn new(config: &crate::Config, runtime: tokio::runtime::Handle) -> Result<Self, Error> {
        let engine = Self::without_ticker(config, runtime)?;
        engine.start_ticker(config.epoch_tick_ms)?;
        Ok(engine)
    }

    /// The engine without its epoch ticker thread, for a native child process (whose one
    /// helper thread ticks it) and for the native fork server (which must stay
    /// single-threaded to fork; each forked child takes the engine over with
    /// [`WasmEngine::with_runtime`]).
    pub fn without_ticker(
        config: &crate::Config,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, Error> {
        let mut cfg = wasmtime::Config::new();
        cfg.epoch_interruption(true);
        // Copy a program's initial data into each new memory instead of mapping it
        // copy-on-write: the data of a guest is a few KiB, so the copy costs no more than
        // the mapping, and every process needs two kernel mappings fewer (the kernel allows
        // 65,530 per OS process: about 13,000 sleeping processes instead of 9,300).
        cfg.memory_init_cow(false);
        if config.pooling.is_none() {
            // Fiber stacks of ended processes are reused rather than unmapped (an unmap
            // interrupts every other core of the host).
            cfg.with_host_stack(Arc::new(super::stacks::PooledStacks(Arc::default())));
            // Linear memories likewise: an ended process's reservation goes to the next.
            cfg.with_host_memory(Arc::new(super::memories::PooledMemories(Arc::default())));
        }
        if let Some(slots) = config.pooling {
            // The pooling allocator: every process's memory, tables, instance and fiber stack
            // come from slots reserved once, so starting a process maps nothing new. Its
            // cost: each slot's stack guard is a mapping of its own from the start.
            let memory = usize::try_from(config.limits.memory).unwrap_or(usize::MAX);
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots.saturating_mul(4))
                .total_memories(slots)
                .total_tables(slots.saturating_mul(2))
                .total_stacks(slots)
                .max_core_instances_per_component(16)
                .max_memories_per_component(2)
                .max_tables_per_component(4)
                .max_memory_size(memory);
            cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            // Reserve no more address space per memory than the memory limit allows.
            cfg.memory_reservation(config.limits.memory);
        }
        let engine = Engine::new(&cfg).map_err(|e| Error::Engine(chain(&e)))?;
        let mut linker = Linker::new(&engine);
        // WASI 0.2.12's `exit-with-code` is linked too: `std::process::exit(n)` keeps `n`.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(chain(&e)))?;
        bindings::Program::add_to_linker::<ProcState, HasSelf<ProcState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(chain(&e)))?;

        Ok(WasmEngine {
            engine,
            linker,
            runtime,
            next_pid: AtomicU64::new(1),
        })
    }

    /// Starts the epoch ticker: every tick, running guests yield to the scheduler.
    fn start_ticker(&self, tick_ms: u64) -> Result<(), Error> {
        let weak = self.engine.weak();
        let tick = Duration::from_millis(tick_ms.max(1));
        std::thread::Builder::new()
            .name("wasmproc-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })
            .map_err(Error::Runtime)?;
        Ok(())
    }

    /// This engine (its compiled programs stay valid), driven by `runtime` from now on: a
    /// child forked from the native fork server takes over the server's engine this way.
    pub fn with_runtime(self, runtime: tokio::runtime::Handle) -> Self {
        WasmEngine { runtime, ..self }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn next_pid(&self) -> u64 {
        self.next_pid.fetch_add(1, Ordering::Relaxed)
    }

    /// Loads a program: a component, or one precompiled by `wasmproc compile`.
    pub fn load(&self, path: &Path) -> Result<Program, Error> {
        let bytes = std::fs::read(path).map_err(|io| Error::ReadProgram {
            path: path.to_path_buf(),
            io,
        })?;
        let fail = |message: String| Error::LoadProgram {
            path: path.to_path_buf(),
            message,
        };
        let component = match Engine::detect_precompiled(&bytes) {
            Some(Precompiled::Component) => {
                // SAFETY: wasmtime checks that the artifact was made by this wasmtime
                // version with a compatible configuration and rejects it otherwise; beyond
                // that, a precompiled file is trusted as native code, which is why only a
                // file the user names (made by `wasmproc compile`) is ever loaded this way.
                unsafe { Component::deserialize(&self.engine, &bytes) }
                    .map_err(|e| fail(format!("not a usable precompiled program: {e:#}")))?
            }
            Some(Precompiled::Module) => {
                return Err(fail(
                    "this is a precompiled core module, not a component".to_string(),
                ));
            }
            None => Component::new(&self.engine, &bytes)
                .map_err(|e| fail(format!("not a WebAssembly component: {e:#}")))?,
        };
        self.prepare(path, component, None)
    }

    /// Loads a program a native parent serialised to `artifact`, trusting its target list.
    pub fn load_artifact(
        &self,
        artifact: &Path,
        display_name: String,
        targets: Vec<String>,
    ) -> Result<Program, Error> {
        // SAFETY: the artifact was written by this same executable (the parent host
        // serialised its compiled component) into a directory it created; wasmtime checks
        // version and configuration compatibility as well. The file is mapped, not read.
        let component =
            unsafe { Component::deserialize_file(&self.engine, artifact) }.map_err(|e| {
                Error::LoadProgram {
                    path: artifact.to_path_buf(),
                    message: format!("cannot map the parent's compiled program: {e:#}"),
                }
            })?;
        let program = self.prepare(artifact, component, Some((display_name, targets)))?;
        let _ = program.inner().artifact.set(artifact.to_path_buf());
        Ok(program)
    }

    fn prepare(
        &self,
        path: &Path,
        component: Component,
        known: Option<(String, Vec<String>)>,
    ) -> Result<Program, Error> {
        let fail = |message: String| Error::LoadProgram {
            path: path.to_path_buf(),
            message,
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| fail(format!("its imports cannot be satisfied: {e:#}")))?;
        let command = wasmtime_wasi::p2::bindings::CommandPre::new(pre.clone()).ok();
        let guest = bindings::ProgramPre::new(pre).ok();
        if command.is_none() && guest.is_none() {
            return Err(fail(
                "it exports neither wasi:cli/run nor wasmproc:process/guest".to_string(),
            ));
        }
        let (display_name, targets) = match known {
            Some(known) => known,
            None => (
                display_name_of(path),
                self.list_targets(path, guest.as_ref())?,
            ),
        };
        Ok(Program::new(ProgramInner {
            path: path.to_path_buf(),
            component,
            artifact: std::sync::OnceLock::new(),
            display_name,
            command,
            guest,
            targets,
        }))
    }

    fn list_targets(&self, path: &Path, guest: Option<&GuestPre>) -> Result<Vec<String>, Error> {
        let fail = |message: String| Error::LoadProgram {
            path: path.to_path_buf(),
            message,
        };
        let targets = match guest {
            Some(guest) => {
                let guest = guest.clone();
                let engine = self.engine.clone();
                let list = async move {
                    let mut store = Store::new(&engine, scratch_state());
                    store.set_epoch_deadline(u64::MAX / 2);
                    let instance = guest.instantiate_async(&mut store).await?;
                    instance
                        .wasmproc_process_guest()
                        .call_targets(&mut store)
                        .await
                };
                let result = match tokio::runtime::Handle::try_current() {
                    Ok(_) => tokio::task::block_in_place(|| self.runtime.block_on(list)),
                    Err(_) => self.runtime.block_on(list),
                };
                result.map_err(|e| fail(format!("listing its targets failed: {e:#}")))?
            }
            None => Vec::new(),
        };
        Ok(targets)
    }

    /// Instantiates `program` once and drops the instance, running none of its code: the
    /// epoch deadline is already reached, so a start function traps at its entry. A spare
    /// of the native fork server does this before its request comes, so that the pages an
    /// instantiation touches are mapped by then, and the linear memory and fiber stack it
    /// took are kept for the process to come (in a spare's child, instantiating took
    /// 236 µs of its start+join without this).
    pub async fn rehearse(&self, program: &Program) {
        let Some(pre) = program.inner().guest.as_ref() else {
            return;
        };
        let mut store = Store::new(&self.engine, scratch_state());
        store.set_epoch_deadline(0);
        store.epoch_deadline_trap();
        let _ = pre.instantiate_async(&mut store).await;
    }

    /// Runs the program's main process (`wasi:cli/run`) with `ctx` and `args`.
    pub async fn run_main(self: &Arc<Self>, ctx: Arc<ProcessCtx>, args: Vec<String>) -> ExitStatus {
        // Nobody holds a control for the main process: it ends only by itself.
        let (_never, signals) = watch::channel(None);
        let engine = self.clone();
        let body = engine.run_guest(ctx.clone(), Entry::Main(args));
        supervise(ctx, body, signals).await
    }

    /// Runs `target` as the process `ctx` of this OS process (a native child).
    pub async fn run_target(
        self: &Arc<Self>,
        ctx: Arc<ProcessCtx>,
        name: String,
        args: Vec<u8>,
    ) -> ExitStatus {
        // A native child is signalled by the OS, not through the model.
        let (_never, signals) = watch::channel(None);
        let body = self
            .clone()
            .run_guest(ctx.clone(), Entry::Target { name, args });
        supervise(ctx, body, signals).await
    }

    /// The scheduler processes run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    async fn run_guest(self: Arc<Self>, ctx: Arc<ProcessCtx>, entry: Entry) -> ExitStatus {
        let Some(program) = ctx.program().cloned() else {
            ctx.output()
                .write_stderr("wasmproc: internal error: process has no program\n");
            return ExitStatus::FAILURE;
        };
        let mut builder = WasiCtxBuilder::new();
        builder.arg(program.display_name());
        if let Entry::Main(args) = &entry {
            builder.args(args);
            if ctx.shared().config.main_stdin {
                builder.stdin(std::io::stdin());
            }
        }
        // Nothing reaches a guest unless granted.
        let grants = &ctx.shared().config.grants;
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
            if let Err(e) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
                ctx.output().write_stderr(&format!(
                    "Process {}: cannot open granted directory {}: {e}\n",
                    ctx.name(),
                    dir.host.display()
                ));
                return ExitStatus::FAILURE;
            }
        }
        ctx.output().apply(&mut builder);
        let mut limits = ctx.shared().config.limits.clone();
        if matches!(entry, Entry::Main(_)) {
            // Time limits are for child processes; the main process is bounded by whoever
            // runs the host.
            limits.cpu_ms = None;
            limits.wall_ms = None;
        }
        let tick_ms = ctx.shared().config.epoch_tick_ms.max(1);
        let mut store = Store::new(
            &self.engine,
            ProcState {
                wasi: builder.build(),
                table: ResourceTable::new(),
                limiter: MemoryLimiter {
                    limit: limits.memory,
                    hit: None,
                },
                ticks: 0,
                ctx: Some(ctx.clone()),
            },
        );
        store.limiter(|s| &mut s.limiter);
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

        let run = async {
            match &entry {
                Entry::Main(_) => match (
                    program.inner().guest.as_ref(),
                    program.inner().command.as_ref(),
                ) {
                    // A program of the SDK: its main starts like any process.
                    (Some(pre), _) => {
                        let guest = pre.instantiate_async(&mut store).await?;
                        guest
                            .wasmproc_process_guest()
                            .call_run_main(&mut store)
                            .await
                    }
                    // A plain WASI command.
                    (None, Some(pre)) => {
                        let command = pre.instantiate_async(&mut store).await?;
                        let r = command.wasi_cli_run().call_run(&mut store).await?;
                        Ok(r.map_err(|()| String::new()))
                    }
                    (None, None) => Ok(Err(format!(
                        "program {} has no main (it does not export wasi:cli/run)",
                        program.display_name()
                    ))),
                },
                Entry::Target { name, args } => match program.inner().guest.as_ref() {
                    Some(pre) => {
                        let guest = pre.instantiate_async(&mut store).await?;
                        guest
                            .wasmproc_process_guest()
                            .call_run_target(&mut store, name, args)
                            .await
                    }
                    None => Ok(Err(format!(
                        "program {} has no targets (it was not built with wasmproc-guest)",
                        program.display_name()
                    ))),
                },
            }
        };
        let result: wasmtime::Result<Result<(), String>> = match limits.wall_ms {
            Some(wall_ms) => tokio::time::timeout(Duration::from_millis(wall_ms), run)
                .await
                .unwrap_or_else(|_| Err(wasmtime::Error::new(LimitHit::Wall(wall_ms)))),
            None => run.await,
        };
        let memory_hit = store.data().limiter.hit;
        drop(store);
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

fn display_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn scratch_state() -> ProcState {
    ProcState {
        wasi: WasiCtxBuilder::new().build(),
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            limit: u64::MAX,
            hit: None,
        },
        ticks: 0,
        ctx: None,
    }
}

enum Entry {
    Main(Vec<String>),
    Target { name: String, args: Vec<u8> },
}

/// The backend object: starts child processes as tasks.
pub(crate) struct WasmBackend {
    engine: Arc<WasmEngine>,
}

impl WasmBackend {
    pub fn new(engine: Arc<WasmEngine>) -> Self {
        WasmBackend { engine }
    }
}

struct WasmControl(watch::Sender<Option<Signal>>);

impl Control for WasmControl {
    fn signal(&self, sig: Signal) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(sig);
                true
            } else {
                false
            }
        });
    }
}

impl Backend for WasmBackend {
    fn new_tree(&self, config: &crate::Config) -> Result<Tree, Error> {
        Ok(Tree::new(
            None,
            SyncHome::Here(Registry::new(config.limits.clone())),
        ))
    }

    fn main_pid(&self) -> u64 {
        self.engine.next_pid()
    }

    fn spawn(
        &self,
        request: SpawnRequest,
        shared: &Arc<RunShared>,
    ) -> Result<Spawned, ProcessError> {
        let pid = self.engine.next_pid();
        request.core.set_pid(pid);
        let request_core = request.core.clone();
        let (tx, signals) = watch::channel(None);
        let ctx = ProcessCtx::new(NewCtx {
            shared: shared.clone(),
            tree: request.tree,
            program: Some(request.program),
            me: request.core,
            name: request.name,
            daemon: request.daemon,
            parent: Some(request.parent),
            output: request.output,
            shares: request.shares,
        });
        let engine = self.engine.clone();
        let entry = Entry::Target {
            name: request.target,
            args: request.args,
        };
        let process = async move {
            let body = engine.run_guest(ctx.clone(), entry);
            supervise(ctx, body, signals).await;
        };
        if shared.config.thread_per_process {
            // The measured alternative: an OS thread per process, each with a scheduler
            // of its own (WASI's blocking calls stay interruptible).
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| ProcessError::host_failure(format!("cannot create a thread: {e}")))?;
            std::thread::Builder::new()
                .name("wasmproc-process".into())
                .spawn(move || runtime.block_on(process))
                .map_err(|e| ProcessError::host_failure(format!("cannot create a thread: {e}")))?;
        } else {
            crate::sched::start(&request_core, &self.engine.runtime, process);
        }
        Ok(Spawned {
            pid,
            control: Box::new(WasmControl(tx)),
        })
    }
}

fn no_ctx() -> wasmtime::Error {
    wasmtime::format_err!("wasmproc imports are not available while a program is inspected")
}

fn to_wit(e: ProcessError) -> WitError {
    use crate::error::ErrorKind as K;
    let kind = match e.kind {
        K::InvalidState => WitErrorKind::InvalidState,
        K::NotAChild => WitErrorKind::NotAChild,
        K::Closed => WitErrorKind::Closed,
        K::UnknownTarget => WitErrorKind::UnknownTarget,
        K::InvalidArgument => WitErrorKind::InvalidArgument,
        K::LimitExceeded => WitErrorKind::LimitExceeded,
        K::HostFailure => WitErrorKind::HostFailure,
        K::Empty => WitErrorKind::Empty,
        K::Full => WitErrorKind::Full,
        K::Eof => WitErrorKind::Eof,
        K::BrokenPipe => WitErrorKind::BrokenPipe,
        K::OwnerDied => WitErrorKind::OwnerDied,
    };
    WitError {
        kind,
        message: e.message,
    }
}

type HostResult<T> = wasmtime::Result<Result<T, WitError>>;

impl ProcState {
    fn model(&self) -> wasmtime::Result<&Arc<ProcessCtx>> {
        self.ctx.as_ref().ok_or_else(no_ctx)
    }

    fn call<T>(
        &self,
        f: impl FnOnce(&Arc<ProcessCtx>) -> Result<T, ProcessError>,
    ) -> HostResult<T> {
        Ok(f(self.model()?).map_err(to_wit))
    }
}

fn duration(ns: Option<u64>) -> Option<Duration> {
    ns.map(Duration::from_nanos)
}

impl bindings::wasmproc::process::types::Host for ProcState {}

// The glue: each import translates its arguments and delegates to the model.
impl wit::Host for ProcState {
    async fn create(
        &mut self,
        target: String,
        args: Vec<u8>,
        shares: Vec<u64>,
        name: Option<String>,
        daemon: Option<bool>,
        program: Option<String>,
    ) -> HostResult<u64> {
        let model = self.model()?.clone();
        Ok(model
            .create(&target, args, &shares, name, daemon, program.as_deref())
            .await
            .map_err(to_wit))
    }

    fn start(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.start(h))
    }

    async fn join(&mut self, h: u64, timeout: Option<u64>) -> HostResult<()> {
        let model = self.model()?.clone();
        Ok(model.join(h, duration(timeout)).await.map_err(to_wit))
    }

    fn is_alive(&mut self, h: u64) -> HostResult<bool> {
        self.call(|m| m.is_alive(h))
    }

    fn exitcode(&mut self, h: u64) -> HostResult<Option<i32>> {
        self.call(|m| m.exitcode(h))
    }

    fn pid(&mut self, h: u64) -> HostResult<Option<u64>> {
        self.call(|m| m.pid(h))
    }

    fn name(&mut self, h: u64) -> HostResult<String> {
        self.call(|m| m.name_of(h))
    }

    fn set_name(&mut self, h: u64, name: String) -> HostResult<()> {
        self.call(|m| m.set_name(h, name))
    }

    fn daemon(&mut self, h: u64) -> HostResult<bool> {
        self.call(|m| m.daemon_of(h))
    }

    fn set_daemon(&mut self, h: u64, daemon: bool) -> HostResult<()> {
        self.call(|m| m.set_daemon(h, daemon))
    }

    fn terminate(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.signal(h, Signal::Term))
    }

    fn kill(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.signal(h, Signal::Kill))
    }

    fn close(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.close(h))
    }

    fn release(&mut self, h: u64) -> wasmtime::Result<()> {
        self.model()?.release(h);
        Ok(())
    }

    fn sentinel(&mut self, h: u64) -> HostResult<u64> {
        self.call(|m| m.sentinel(h))
    }

    async fn wait(&mut self, sentinels: Vec<u64>, timeout: Option<u64>) -> HostResult<Vec<u64>> {
        let model = self.model()?.clone();
        Ok(model
            .wait(&sentinels, duration(timeout))
            .await
            .map_err(to_wit))
    }

    fn current_process(&mut self) -> wasmtime::Result<u64> {
        Ok(self.model()?.current_process())
    }

    fn parent_process(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.model()?.parent_process())
    }

    fn active_children(&mut self) -> wasmtime::Result<Vec<u64>> {
        Ok(self.model()?.active_children())
    }

    fn exit(&mut self, code: i32) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(GuestExit(ExitStatus::from_exit_call(
            code,
        ))))
    }

    fn authkey(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.model()?.authkey())
    }

    fn cpu_count(&mut self) -> wasmtime::Result<u32> {
        Ok(self.model()?.cpu_count())
    }
}

/// Carries out `request` on the caller's sync objects; `take` reads the answer.
async fn sync_on<T>(
    model: Arc<ProcessCtx>,
    request: Request,
    take: impl FnOnce(Response) -> Result<T, ProcessError>,
) -> HostResult<T> {
    Ok(model
        .sync_call(request)
        .await
        .and_then(take)
        .map_err(to_wit))
}

// The glue of the sync interface: each import is one request to the model.
impl sync_wit::Host for ProcState {
    async fn queue_new(&mut self, maxsize: u32) -> HostResult<u64> {
        sync_on(
            self.model()?.clone(),
            Request::QueueNew { maxsize },
            Response::handle,
        )
        .await
    }

    async fn queue_put(
        &mut self,
        h: u64,
        item: Vec<u8>,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<()> {
        let request = Request::QueuePut {
            h,
            item,
            block,
            timeout,
        };
        sync_on(self.model()?.clone(), request, Response::unit).await
    }

    async fn queue_get(
        &mut self,
        h: u64,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<Vec<u8>> {
        let request = Request::QueueGet { h, block, timeout };
        sync_on(self.model()?.clone(), request, Response::bytes).await
    }

    async fn queue_get_many(
        &mut self,
        h: u64,
        max: u32,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<Vec<Vec<u8>>> {
        let request = Request::QueueGetMany {
            h,
            max,
            block,
            timeout,
        };
        sync_on(self.model()?.clone(), request, Response::items).await
    }

    async fn queue_put_many(&mut self, h: u64, items: Vec<Vec<u8>>) -> HostResult<u32> {
        let request = Request::QueuePutMany { h, items };
        sync_on(self.model()?.clone(), request, Response::count).await
    }

    async fn queue_post(&mut self, h: u64, item: Vec<u8>) -> HostResult<()> {
        Ok(self
            .model()?
            .clone()
            .sync_post(h, item)
            .await
            .map_err(to_wit))
    }

    fn queue_try_put(&mut self, h: u64, item: Vec<u8>) -> HostResult<bool> {
        let request = Request::QueuePut {
            h,
            item,
            block: false,
            timeout: None,
        };
        Ok(match self.model()?.sync_now(request) {
            Some(Response::Unit) => Ok(true),
            Some(Response::Error(e)) => {
                let e = ProcessError::from(e);
                if e.kind == crate::error::ErrorKind::Full {
                    Ok(false)
                } else {
                    Err(to_wit(e))
                }
            }
            Some(other) => Err(to_wit(other.unit().unwrap_err())),
            None => Ok(false),
        })
    }

    fn queue_try_get(&mut self, h: u64) -> HostResult<Option<Vec<u8>>> {
        let request = Request::QueueGet {
            h,
            block: false,
            timeout: None,
        };
        Ok(match self.model()?.sync_now(request) {
            Some(Response::Bytes(item)) => Ok(Some(item)),
            Some(Response::Error(e)) => {
                let e = ProcessError::from(e);
                if e.kind == crate::error::ErrorKind::Empty {
                    Ok(None)
                } else {
                    Err(to_wit(e))
                }
            }
            Some(other) => Err(to_wit(other.bytes().unwrap_err())),
            None => Ok(None),
        })
    }

    fn queue_try_put_small(&mut self, h: u64, item: sync_wit::SmallItem) -> HostResult<bool> {
        let Some(len) = Some(usize::from(item.len)).filter(|l| *l <= 16) else {
            return Ok(Err(to_wit(ProcessError::invalid_argument(format!(
                "a small item has at most 16 bytes, not {}",
                item.len
            )))));
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&item.lo.to_le_bytes());
        bytes[8..].copy_from_slice(&item.hi.to_le_bytes());
        Ok(match self.model()?.sync_try_put_small(h, &bytes[..len]) {
            Some(Ok(put)) => Ok(put),
            Some(Err(e)) => Err(to_wit(e)),
            None => Ok(false),
        })
    }

    fn queue_try_get_small(&mut self, h: u64) -> HostResult<sync_wit::TakenItem> {
        use crate::sync::Taken;
        Ok(match self.model()?.sync_try_get_small(h) {
            Some(Ok(Some(Taken::Small(len, bytes)))) => {
                let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("8 bytes"));
                Ok(sync_wit::TakenItem::Small(sync_wit::SmallItem {
                    len,
                    lo: word(&bytes[..8]),
                    hi: word(&bytes[8..]),
                }))
            }
            Some(Ok(Some(Taken::Large(item)))) => Ok(sync_wit::TakenItem::Large(item)),
            Some(Ok(None)) | None => Ok(sync_wit::TakenItem::None),
            Some(Err(e)) => Err(to_wit(e)),
        })
    }

    async fn queue_qsize(&mut self, h: u64) -> HostResult<u32> {
        sync_on(
            self.model()?.clone(),
            Request::QueueSize { h },
            Response::count,
        )
        .await
    }

    async fn pipe_new(&mut self, duplex: bool) -> HostResult<(u64, u64)> {
        sync_on(
            self.model()?.clone(),
            Request::PipeNew { duplex },
            Response::pair,
        )
        .await
    }

    async fn conn_send(&mut self, h: u64, message: Vec<u8>) -> HostResult<()> {
        sync_on(
            self.model()?.clone(),
            Request::ConnSend { h, message },
            Response::unit,
        )
        .await
    }

    async fn conn_recv(&mut self, h: u64) -> HostResult<Vec<u8>> {
        sync_on(
            self.model()?.clone(),
            Request::ConnRecv { h },
            Response::bytes,
        )
        .await
    }

    async fn conn_poll(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        sync_on(
            self.model()?.clone(),
            Request::ConnPoll { h, timeout },
            Response::bool,
        )
        .await
    }

    async fn event_new(&mut self) -> HostResult<u64> {
        sync_on(self.model()?.clone(), Request::EventNew, Response::handle).await
    }

    async fn event_set(&mut self, h: u64) -> HostResult<()> {
        sync_on(
            self.model()?.clone(),
            Request::EventSet { h },
            Response::unit,
        )
        .await
    }

    async fn event_clear(&mut self, h: u64) -> HostResult<()> {
        sync_on(
            self.model()?.clone(),
            Request::EventClear { h },
            Response::unit,
        )
        .await
    }

    async fn event_is_set(&mut self, h: u64) -> HostResult<bool> {
        sync_on(
            self.model()?.clone(),
            Request::EventIsSet { h },
            Response::bool,
        )
        .await
    }

    async fn event_wait(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        sync_on(
            self.model()?.clone(),
            Request::EventWait { h, timeout },
            Response::bool,
        )
        .await
    }

    async fn lock_new(&mut self, kind: sync_wit::LockKind, value: u32) -> HostResult<u64> {
        let kind = match kind {
            sync_wit::LockKind::Lock => LockKind::Lock,
            sync_wit::LockKind::Rlock => LockKind::RLock,
            sync_wit::LockKind::Semaphore => LockKind::Semaphore,
            sync_wit::LockKind::BoundedSemaphore => LockKind::BoundedSemaphore,
        };
        sync_on(
            self.model()?.clone(),
            Request::LockNew { kind, value },
            Response::handle,
        )
        .await
    }

    async fn lock_acquire(
        &mut self,
        h: u64,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<bool> {
        let request = Request::LockAcquire { h, block, timeout };
        sync_on(self.model()?.clone(), request, Response::bool).await
    }

    async fn lock_release(&mut self, h: u64) -> HostResult<()> {
        sync_on(
            self.model()?.clone(),
            Request::LockRelease { h },
            Response::unit,
        )
        .await
    }

    async fn lock_value(&mut self, h: u64) -> HostResult<u32> {
        sync_on(
            self.model()?.clone(),
            Request::LockValue { h },
            Response::count,
        )
        .await
    }

    async fn close(&mut self, h: u64) -> wasmtime::Result<()> {
        let model = self.model()?.clone();
        let _ = model.sync_call(Request::Close { h }).await;
        Ok(())
    }
}
