//! wasmproc: a process model for WebAssembly — Python's `multiprocessing.Process` for WASI
//! components.
//!
//! A [`Host`] loads [`Program`]s (WASI components built with the `wasmproc-guest` SDK) and
//! runs processes of them: the program's main process with [`Host::run_main`], or single
//! targets started from Rust with [`Host::process`]. Inside a program, guest code starts
//! and controls its own children through the `wasmproc:process` WIT interface, under the
//! same rules.
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmproc::{Config, Host, OutputMode};
//!
//! # fn main() -> Result<(), wasmproc::Error> {
//! let host = Host::new(Config { output: OutputMode::Capture, ..Config::default() })?;
//! let program = host.load("worker.wasm")?;
//! let p = host.process(&program, "work").name("worker-1").start()?;
//! p.join(Some(Duration::from_secs(5)))?;
//! println!("{} ended with {:?}", p.name()?, p.exitcode()?);
//! println!("it printed: {}", String::from_utf8_lossy(&p.stdout()?));
//! # Ok(())
//! # }
//! ```
//!
//! # Architecture
//! `ARCHITECTURE.md` at the repository's root describes the layers: `src/model/` (the
//! process model, written once), `src/backend/` (how a child runs: `wasm.rs`, `native/`),
//! `src/engine/` (the wasmtime engine both backends run guests on), `src/sync/` (queues,
//! pipes, events, locks) and `src/program.rs` (a program compiled once per host).
//!
//! # Caveats
//! - The blocking methods ([`Host::run_main`], [`Process::join`], [`Host::wait`]) and
//!   dropping a [`Host`] work in async code too (they block the calling task, on a thread of
//!   their own); async code should await [`Host::run_main_async`], [`Process::join_async`]
//!   and [`Host::wait_async`] instead, which work on any runtime.
//! - Dropping a [`Process`] neither joins nor terminates it; dropping the [`Host`] stops
//!   every process it still runs.

#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

mod backend;
mod config;
mod engine;
mod error;
mod events;
mod exit;
mod hooks;
mod model;
mod output;
mod program;
mod shared;
mod sync;

pub use config::{
    BackendKind, Config, ConfigError, DirGrant, Grants, LIMIT_EXIT_CODE, Limits, NativeProcesses,
    OutputMode, Settings, WasmProcesses, native_processes, parse_env_grant, wasm_processes,
};
pub use engine::ProcState as StoreData;
pub use error::{Error, ErrorKind, ProcessError};
pub use events::{Events, EventsError, ProcessEvent};
pub use exit::{ExitStatus, LimitHit, Signal};
pub use hooks::Hooks;
pub use output::Captured;
pub use program::Program;
pub use shared::{BoundedSemaphore, Connection, Event, Lock, Queue, RLock, Semaphore};
/// The wasmtime crate wasmproc runs on, for [`Hooks`] (its `Config`, `Linker` and `Store`).
pub use wasmtime;

use backend::native::NativeBackend;
use backend::wasm::WasmBackend;
use engine::Engine;
use model::{Entry, HostState, NewCtx, NewHost, ProcessCore, ProcessCtx};
use program::{ProgramSource, Programs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use sync::Shares;

/// A host: one wasmtime engine, one scheduler, and every process of one run.
pub struct Host {
    // Dropped first, in `Drop for Host`: dropping the runtime cancels every process task
    // before the engine goes away.
    runtime: std::mem::ManuallyDrop<tokio::runtime::Runtime>,
    engine: Arc<Engine>,
    state: Arc<HostState>,
    root: Arc<ProcessCtx>,
}

impl Drop for Host {
    /// Ends every process the host started (as the end of a run does); a [`Process`]
    /// still held afterwards reports how it ended, and cannot be started. Blocks until they
    /// have ended, also when dropped in async code (see [`blocking`]).
    fn drop(&mut self) {
        self.state.set_host_gone();
        let run = self.root.run().clone();
        // SAFETY: `self.runtime` is taken once, here, and never used again: `self` is being
        // dropped.
        let runtime = unsafe { std::mem::ManuallyDrop::take(&mut self.runtime) };
        blocking(move || {
            runtime.block_on(async move { run.kill_all().await });
            drop(runtime);
        });
        self.state.events.close();
    }
}

/// Runs `f`, which blocks, on this thread; or, when this thread runs async code (it is
/// inside a tokio runtime, where blocking on the host's scheduler or dropping it would
/// panic), on a thread of its own while this one waits. The caller's async task is blocked
/// either way: async code should prefer the `_async` methods.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl Host {
    /// A host with `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `config` cannot be run (a `memory` limit above
    /// [`Limits::MAX_MEMORY`]); [`Error::Program`] when a file of [`Config::programs`] cannot
    /// be read or is not a program (text, a core module); [`Error::Runtime`], [`Error::Engine`], [`Error::NativeExe`]
    /// or [`Error::WorkDir`] when the host's runtime, engine or native backend cannot be
    /// set up.
    pub fn new(config: Config) -> Result<Host, Error> {
        if config.limits.memory > Limits::MAX_MEMORY {
            return Err(Error::Config(format!(
                "limit memory = {} bytes: a wasm32 process addresses at most 4GiB ({} bytes)",
                config.limits.memory,
                Limits::MAX_MEMORY
            )));
        }
        for (name, path) in &config.programs {
            engine::check_program_file(path).map_err(|why| Error::Program {
                name: name.clone(),
                why,
            })?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("wasmproc-worker")
            .build()
            .map_err(Error::Runtime)?;
        let runtime = std::mem::ManuallyDrop::new(runtime);
        let engine = Arc::new(Engine::new(&config, runtime.handle().clone())?);
        let backend: Box<dyn backend::Backend> = match config.backend {
            BackendKind::Wasm => Box::new(WasmBackend::new()),
            BackendKind::Native => Box::new(NativeBackend::new(
                runtime.handle().clone(),
                config.native_exe.clone(),
                !config.hooks.is_empty(),
            )?),
        };
        let allowed = config
            .programs
            .iter()
            .map(|(n, p)| (n.clone(), ProgramSource::File(p.clone())))
            .collect();
        let state = HostState::new(
            NewHost {
                backend,
                runner: engine.clone(),
                runtime: runtime.handle().clone(),
                config,
                authkey: None,
                programs: Programs::new(engine.clone(), allowed),
            },
            std::process::id(),
        );
        let bounds = model::Bounds::of(&state.config);
        let root = ProcessCtx::new(NewCtx {
            bounds,
            host: state.clone(),
            run: state.new_run()?,
            program: None,
            me: ProcessCore::running(Vec::new(), u64::from(std::process::id())),
            name: "MainProcess".to_string(),
            daemon: false,
            parent: None,
            output: output::ProcessOutput::new(OutputMode::Inherit, "MainProcess", 0, None),
            shares: Shares::None,
            announce_end: None,
        });
        Ok(Host {
            runtime,
            engine,
            state,
            root,
        })
    }

    /// Loads a program: a WebAssembly component file. It is compiled once; every process
    /// of it is a new instance. A precompiled file (whatever its name) is refused: it is
    /// native code, which only [`Host::load_precompiled`] loads.
    ///
    /// # Errors
    /// [`Error::ReadProgram`] when `path` cannot be read; [`Error::LoadProgram`] when it is
    /// not a component (a core module, a precompiled file, text), does not compile, or
    /// does not export the guest SDK's interface.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<Program, Error> {
        self.engine.load(path.as_ref())
    }

    /// Loads a program: a component file, or one precompiled with [`Host::precompile`]
    /// (`wasmproc compile`), which loads without compiling.
    ///
    /// # Safety
    /// A precompiled program is native code that the host maps and runs as it is.
    /// wasmtime checks its header (that this wasmtime version, with a compatible
    /// configuration, made it) and refuses it otherwise, but it cannot check the code:
    /// a file that was changed, or made by someone else, can do anything this OS process
    /// can, sandbox or not. The caller must make sure that `path` was written by
    /// [`Host::precompile`] of this build of wasmproc and has not been changed since (a
    /// file of its own, not one an untrusted party could write).
    ///
    /// # Errors
    /// As [`Host::load`], and [`Error::LoadProgram`] when wasmtime refuses the artifact's
    /// header (another wasmtime version or configuration made it).
    pub unsafe fn load_precompiled(&self, path: impl AsRef<Path>) -> Result<Program, Error> {
        // SAFETY: the caller's contract is this function's.
        unsafe { self.engine.load_precompiled(path.as_ref()) }
    }

    /// Lets the other programs of [`Config::programs`] be precompiled files too (as
    /// [`Host::load_precompiled`] loads them): `wasmproc run --allow-precompiled`.
    ///
    /// # Safety
    /// The contract of [`Host::load_precompiled`], for every file of
    /// [`Config::programs`].
    pub unsafe fn allow_precompiled_programs(&self) {
        // SAFETY: the caller's contract is this function's.
        unsafe { self.state.programs.allow_precompiled() }
    }

    /// Compiles the component at `input` and writes the native artifact to `output`, for
    /// loading without compiling ([`Host::load_precompiled`]; it works only with this build
    /// of wasmproc). `output` may not be `input` itself.
    ///
    /// # Errors
    /// [`Error::ReadProgram`] when `input` cannot be read; [`Error::LoadProgram`] when it is
    /// not a component, is precompiled already, or does not compile; [`Error::WriteFile`]
    /// when `output` is `input` or cannot be written.
    pub fn precompile(&self, input: &Path, output: &Path) -> Result<(), Error> {
        let bytes = std::fs::read(input).map_err(|io| Error::ReadProgram {
            path: input.to_path_buf(),
            io,
        })?;
        let fail = |message: String| Error::LoadProgram {
            path: input.to_path_buf(),
            message,
        };
        match engine::classify(&bytes) {
            engine::Input::Component => {}
            engine::Input::Precompiled => {
                return Err(fail("it is precompiled already".to_string()));
            }
            other => return Err(fail(other.refusal().to_string())),
        }
        if same_file(input, output) {
            return Err(Error::WriteFile {
                path: output.to_path_buf(),
                io: std::io::Error::other("it is the program being compiled"),
            });
        }
        let artifact = self
            .engine
            .wasmtime_for(&bytes)?
            .precompile_component(&bytes)
            .map_err(|e| {
                fail(format!(
                    "not a WebAssembly component: {}",
                    engine::one_line(&error::chain(&e))
                ))
            })?;
        std::fs::write(output, artifact).map_err(|io| Error::WriteFile {
            path: output.to_path_buf(),
            io,
        })
    }

    /// Runs the program's main process (`MainProcess`) with command-line `args` until it
    /// and (by the exit handler) its children have ended; returns how it ended and, when
    /// output is captured, what each process of the run wrote.
    ///
    /// Several runs may go on at once, from different threads. The main process runs on
    /// the calling thread (a thread of its own when called from async code, which should
    /// use [`Host::run_main_async`]).
    ///
    /// # Errors
    /// [`Error`] when the run's backend part cannot be made (for `native`, its directory
    /// or its object server's socket).
    pub fn run_main(&self, program: &Program, args: &[String]) -> Result<MainRun, Error> {
        let (run, main) = self.main_run(program, args)?;
        // The main process runs on the calling thread (so that it and its children run in
        // parallel on a 2-core machine); a child it starts and joins at once runs there too
        // (`model/sched.rs`).
        let status = blocking(|| self.runtime.block_on(model::flushing(main)));
        Ok(MainRun {
            status,
            processes: run.captured_owned(),
        })
    }

    /// [`Host::run_main`] for async code: the main process runs as a task of the host's
    /// scheduler, and the caller's task awaits it.
    ///
    /// # Errors
    /// As [`Host::run_main`].
    pub async fn run_main_async(
        &self,
        program: &Program,
        args: &[String],
    ) -> Result<MainRun, Error> {
        let (run, main) = self.main_run(program, args)?;
        let status = self
            .runtime
            .spawn(model::flushing(main))
            .await
            .unwrap_or(ExitStatus::FAILURE);
        Ok(MainRun {
            status,
            processes: run.captured_owned(),
        })
    }

    /// A new run of `program`'s main process: the run, and the main process's life to its
    /// status (the run's orphans killed after it).
    fn main_run(
        &self,
        program: &Program,
        args: &[String],
    ) -> Result<
        (
            Arc<model::Run>,
            impl Future<Output = ExitStatus> + Send + 'static,
        ),
        Error,
    > {
        let run = self.state.new_run()?;
        let output = self
            .state
            .output_for(&run, "MainProcess", self.state.config.limits.output);
        let ctx = ProcessCtx::new(NewCtx {
            bounds: model::Bounds::of(&self.state.config),
            host: self.state.clone(),
            run: run.clone(),
            program: Some(program.clone()),
            me: ProcessCore::running(Vec::new(), self.state.backend.main_pid()),
            name: "MainProcess".to_string(),
            daemon: false,
            parent: None,
            output,
            shares: Shares::None,
            announce_end: None,
        });
        let run_end = run.clone();
        let entry = Entry::Main(args.to_vec());
        let run_ms = self.state.config.limits.run_ms;
        let main_pid = ctx.core().pid().unwrap_or(0);
        ctx.emit(ProcessEvent::Started {
            name: "MainProcess".to_string(),
            pid: main_pid,
            parent: String::new(),
        });
        let main = async move {
            // Nobody holds a control for the main process: it ends only by itself, or when
            // the run's `run_ms` have passed.
            let (stop, signals) = tokio::sync::watch::channel(None);
            let main_ctx = ctx.clone();
            let timer = run_ms.map(|ms| {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let hit = LimitHit::Run(ms);
                    ctx.core().record_limit(hit);
                    ctx.output()
                        .write_stderr(&format!("Process {}: {hit}\n", ctx.name()));
                    let _ = stop.send(Some(Signal::Kill));
                })
            });
            let mut status = model::supervise(ctx, entry, signals).await;
            if let Some(timer) = timer {
                timer.abort();
            }
            // Only the timer kills the main process.
            if status == ExitStatus::Signaled(Signal::Kill) && main_ctx.core().limit_hit().is_some()
            {
                status = ExitStatus::Code(LIMIT_EXIT_CODE);
            }
            // No process outlives its run: orphans still running are killed now.
            run_end.kill_all().await;
            main_ctx.emit(ProcessEvent::Ended {
                name: "MainProcess".to_string(),
                pid: main_pid,
                status,
                limit: main_ctx.core().limit_hit(),
            });
            status
        };
        Ok((run, main))
    }

    /// `multiprocessing.connection.wait` for processes: the indexes of those in
    /// `processes` that have ended, waiting up to `timeout` (none: forever) for one to.
    /// Blocks; async code should use [`Host::wait_async`].
    ///
    /// # Errors
    /// [`ProcessError`] when one of `processes` is not a started process of this host
    /// (`invalid-state`, or `invalid-argument` for another host's), or is closed.
    pub fn wait(
        &self,
        processes: &[&Process],
        timeout: Option<Duration>,
    ) -> Result<Vec<usize>, ProcessError> {
        let sentinels = self.sentinels(processes)?;
        let ready = blocking(|| self.runtime.block_on(self.root.wait(&sentinels, timeout)))?;
        Ok(indexes_of(&sentinels, &ready))
    }

    /// [`Host::wait`] for async code.
    ///
    /// # Errors
    /// As [`Host::wait`].
    pub async fn wait_async(
        &self,
        processes: &[&Process],
        timeout: Option<Duration>,
    ) -> Result<Vec<usize>, ProcessError> {
        let sentinels = self.sentinels(processes)?;
        let (root, waited) = (self.root.clone(), sentinels.clone());
        let ready = self
            .runtime
            .spawn(async move { root.wait(&waited, timeout).await })
            .await
            .map_err(|e| ProcessError::host_failure(format!("the wait was lost: {e}")))??;
        Ok(indexes_of(&sentinels, &ready))
    }

    /// The sentinels of `processes`, which must be this host's.
    fn sentinels(&self, processes: &[&Process]) -> Result<Vec<u64>, ProcessError> {
        processes
            .iter()
            .map(|p| {
                if !Arc::ptr_eq(&p.root, &self.root) {
                    return Err(ProcessError::invalid_argument(
                        "the process belongs to another host",
                    ));
                }
                self.root.sentinel(p.handle)
            })
            .collect()
    }

    /// Prepares a child process of the host running `target` of `program`.
    pub fn process<'h>(&'h self, program: &Program, target: &str) -> ProcessBuilder<'h> {
        ProcessBuilder {
            host: self,
            program: program.clone(),
            target: target.to_string(),
            args: Vec::new(),
            shared: Vec::new(),
            bad_arg: None,
            name: None,
            daemon: None,
            limits: Vec::new(),
            grants: None,
        }
    }

    /// A new queue of `T`s for the host's own code and the processes it passes it to (in
    /// their start arguments: `host.process(&p, "worker").arg(&queue)`, whose target takes
    /// the guest SDK's `Queue<T>`): bounded to `maxsize` items, or unbounded with 0.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn queue<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        maxsize: u32,
    ) -> Result<Queue<T>, ProcessError> {
        Queue::new(&self.root, self.runtime.handle(), maxsize)
    }

    /// A new pipe, as `multiprocessing.Pipe(duplex)`: two connected ends, either of which
    /// the host's code keeps or passes to a process in its start arguments (a target that
    /// takes the guest SDK's `Connection`). One-way (`duplex` false): the first end only
    /// receives and the second only sends.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn pipe(&self, duplex: bool) -> Result<(Connection, Connection), ProcessError> {
        Connection::pair(&self.root, self.runtime.handle(), duplex)
    }

    /// A new event for the host's own code and the processes it passes it to (in their
    /// start arguments, as [`Host::queue`]'s), as `multiprocessing.Event()`.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn event(&self) -> Result<Event, ProcessError> {
        Event::new(&self.root, self.runtime.handle())
    }

    /// A new lock, shared as [`Host::event`]'s event, as `multiprocessing.Lock()`.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn lock(&self) -> Result<Lock, ProcessError> {
        Lock::new(&self.root, self.runtime.handle(), 1)
    }

    /// A new recursive lock, as `multiprocessing.RLock()`.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn rlock(&self) -> Result<RLock, ProcessError> {
        RLock::new(&self.root, self.runtime.handle(), 1)
    }

    /// A new semaphore of `value` units, as `multiprocessing.Semaphore(value)`.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn semaphore(&self, value: u32) -> Result<Semaphore, ProcessError> {
        Semaphore::new(&self.root, self.runtime.handle(), value)
    }

    /// A new bounded semaphore of `value` units, as
    /// `multiprocessing.BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// `limit-exceeded` at the `objects` limit.
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphore, ProcessError> {
        BoundedSemaphore::new(&self.root, self.runtime.handle(), value)
    }

    /// A subscription to the lifecycle events of every process of the host's runs (the
    /// processes started from Rust, every program's main process, and all their
    /// descendants, on both backends), from now on, in the order they happened: starts,
    /// refused starts, `terminate`/`kill` calls and ends ([`ProcessEvent`]). It keeps at
    /// most `capacity` events it has not received; past that it drops events and says how
    /// many ([`EventsError::Missed`]). The same events go to `tracing` (target `wasmproc`)
    /// whether or not anyone subscribes.
    ///
    /// A process's `Ended` is published as its end becomes visible: a `join` after it
    /// returns at once.
    pub fn events(&self, capacity: usize) -> Events {
        self.state.events.subscribe(capacity)
    }

    /// The run's authentication key, as guests read it.
    pub fn authkey(&self) -> [u8; 32] {
        *self.state.authkey()
    }
}

/// The entry point of a native child process: `wasmproc __child` calls this and exits with
/// the code it returns. A program embedding the library that names its own executable as
/// [`Config::native_exe`] must do the same when its first argument is `__child`.
#[doc(hidden)]
pub fn native_child_main() -> u8 {
    backend::native::child_main()
}

/// The entry point of a native child process of a host with [`Config::hooks`]: a program
/// embedding the library that names its own executable as [`Config::native_exe`] calls
/// this, with the same hooks as its host's, when its first argument is
/// [`CHILD_SUBCOMMAND`], and exits with the code it returns.
///
/// ```no_run
/// fn hooks() -> wasmproc::Hooks {
///     wasmproc::Hooks::default().config(|c| {
///         c.consume_fuel(true);
///     })
/// }
///
/// fn main() {
///     if std::env::args().nth(1).as_deref() == Some(wasmproc::CHILD_SUBCOMMAND) {
///         std::process::exit(i32::from(wasmproc::native_child_main_with(hooks())));
///     }
///     // ... a Host with `Config { hooks: hooks(), native_exe: std::env::current_exe().ok(), .. }`
/// }
/// ```
pub fn native_child_main_with(hooks: Hooks) -> u8 {
    hooks::set_child_hooks(hooks);
    backend::native::child_main()
}

pub use backend::native::CHILD_SUBCOMMAND;

/// The positions in `sentinels` of the ones in `ready`.
fn indexes_of(sentinels: &[u64], ready: &[u64]) -> Vec<usize> {
    sentinels
        .iter()
        .enumerate()
        .filter(|(_, s)| ready.contains(s))
        .map(|(i, _)| i)
        .collect()
}

/// How a main process ended; see [`Host::run_main`].
#[derive(Debug, Clone)]
pub struct MainRun {
    /// How the main process ended.
    pub status: ExitStatus,
    /// With [`OutputMode::Capture`]: the output of every process of the run, main first,
    /// then in start order. Empty otherwise.
    pub processes: Vec<Captured>,
}

impl MainRun {
    /// The captured output of the process that started with `name` (the first, if several
    /// did).
    pub fn process(&self, name: &str) -> Option<&Captured> {
        self.processes.iter().find(|c| c.name() == name)
    }
}

/// Options for a process started from Rust; see [`Host::process`].
pub struct ProcessBuilder<'h> {
    host: &'h Host,
    program: Program,
    target: String,
    args: Vec<u8>,
    /// The host's queues and pipe ends [`ProcessBuilder::arg`] serialised.
    shared: Vec<u64>,
    /// Why [`ProcessBuilder::arg`] could not serialise its value (reported by `create`).
    bad_arg: Option<String>,
    name: Option<String>,
    daemon: Option<bool>,
    /// Limits of its own, as `(key, value)`.
    limits: Vec<(String, String)>,
    grants: Option<Grants>,
}

impl ProcessBuilder<'_> {
    /// Lowers limit `key` to `value` for this process and its descendants (as
    /// [`Limits::set`] reads it); the host's limit still applies when it is lower. The
    /// limits a process may have of its own are [`Limits::PER_PROCESS`]. A bad key or
    /// value makes [`ProcessBuilder::create`] fail with `invalid-argument`.
    pub fn limit(mut self, key: &str, value: &str) -> Self {
        self.limits.push((key.to_string(), value.to_string()));
        self
    }

    /// What this process and its descendants may reach instead of the host's grants:
    /// no more than the host grants ([`Grants::within`]; otherwise
    /// [`ProcessBuilder::create`] fails with `invalid-argument`). `Grants::default()`
    /// takes every grant away.
    pub fn grants(mut self, grants: Grants) -> Self {
        self.grants = Some(grants);
        self
    }

    /// The limits and grants the process runs under, if it has its own.
    fn bounds(&self, root: &ProcessCtx) -> Result<Option<model::Bounds>, ProcessError> {
        if self.limits.is_empty() && self.grants.is_none() {
            return Ok(None);
        }
        let mut limits = root.limits().clone();
        for (key, value) in &self.limits {
            limits
                .tighten(key, value)
                .map_err(ProcessError::invalid_argument)?;
        }
        let grants = match &self.grants {
            Some(grants) => {
                grants
                    .within(root.grants())
                    .map_err(ProcessError::invalid_argument)?;
                grants.clone()
            }
            None => root.grants().clone(),
        };
        Ok(Some(model::Bounds {
            limits: Arc::new(limits),
            grants: Arc::new(grants),
        }))
    }

    /// The target's arguments as bytes, as the guest SDK serialises them (postcard);
    /// [`ProcessBuilder::arg`] serialises a value.
    pub fn args(mut self, bytes: Vec<u8>) -> Self {
        self.args = bytes;
        self.shared.clear();
        self.bad_arg = None;
        self
    }

    /// The target's argument: `value`, serialised as the guest SDK decodes it, so it must
    /// have the type of the target's parameter (a tuple for several values), as
    /// `Process::new(target, &value)` in a guest. A value that does not serialise makes
    /// [`ProcessBuilder::create`] fail with `invalid-argument`; one of another type than
    /// the target's ends the process with exit code 1 and a line on its stderr naming the
    /// target and the type.
    ///
    /// The host's [`Queue`]s and [`Connection`]s in `value` are passed to the process: it
    /// holds them from its start, as a guest's child holds the objects in its arguments.
    pub fn arg<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match shared::serialize_args(&self.host.root, value) {
            Ok((bytes, shared)) => {
                self.args = bytes;
                self.shared = shared;
                self.bad_arg = None;
            }
            Err(why) => self.bad_arg = Some(why),
        }
        self
    }

    /// Names the process instead of `Process-N`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Sets the daemon flag.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Creates the process object without starting it.
    ///
    /// # Errors
    /// [`ProcessError`] (in [`Error::Process`]): `invalid-argument` when the value given to
    /// [`ProcessBuilder::arg`] does not serialise; `unknown-target` when the program has no
    /// such target; `invalid-argument` for a bad name (over 4096 bytes, or with control
    /// characters); `limit-exceeded` past the `args` or `held` limit.
    pub fn create(self) -> Result<Process, Error> {
        if let Some(why) = self.bad_arg {
            return Err(Error::Process(ProcessError::new(
                ErrorKind::InvalidArgument,
                why,
            )));
        }
        let root = self.host.root.clone();
        let bounds = self.bounds(&root)?;
        let shares = if self.shared.is_empty() {
            Shares::None
        } else {
            let share = root.client().share(&self.shared);
            blocking(|| self.host.runtime.block_on(share))?
        };
        let handle = root.create_in(
            self.program,
            &self.target,
            self.args,
            shares,
            self.name,
            self.daemon,
            bounds,
        )?;
        Ok(Process {
            root,
            runtime: self.host.runtime.handle().clone(),
            handle,
        })
    }

    /// Creates and starts the process.
    ///
    /// # Errors
    /// As [`ProcessBuilder::create`] and [`Process::start`].
    pub fn start(self) -> Result<Process, Error> {
        let p = self.create()?;
        p.start()?;
        Ok(p)
    }
}

/// A child process of the host, with the methods of `multiprocessing.Process`.
pub struct Process {
    root: Arc<ProcessCtx>,
    runtime: tokio::runtime::Handle,
    handle: u64,
}

impl Process {
    /// Starts it.
    ///
    /// # Errors
    /// `invalid-state` when it was started before ("process has already started");
    /// `closed` after [`Process::close`]; `limit-exceeded` at the `processes` or `children`
    /// limit (and, under `native`, when the host's OS process is out of descriptors or
    /// processes; under `wasm`, near the kernel's `vm.max_map_count`); `host-failure` when
    /// the backend cannot start a process (under `native`, an OS error naming the step).
    pub fn start(&self) -> Result<(), ProcessError> {
        self.root.start(self.handle)
    }

    /// Blocks until it ends or `timeout` passes (also in async code, which should use
    /// [`Process::join_async`]).
    ///
    /// # Errors
    /// `invalid-state` before it was started; `closed` after [`Process::close`].
    pub fn join(&self, timeout: Option<Duration>) -> Result<(), ProcessError> {
        let join = self.root.join(self.handle, timeout);
        if self.root.host().host_gone() {
            // The host killed its processes when it was dropped, and its scheduler is
            // gone: the answer needs no waiting.
            return futures::executor::block_on(join);
        }
        blocking(|| self.runtime.block_on(join))
    }

    /// [`Process::join`] for async code: the caller's task awaits the end, on whatever
    /// runtime it runs (the waiting is done by the host's scheduler).
    ///
    /// # Errors
    /// As [`Process::join`].
    pub async fn join_async(&self, timeout: Option<Duration>) -> Result<(), ProcessError> {
        let (root, h) = (self.root.clone(), self.handle);
        if root.host().host_gone() {
            return root.join(h, timeout).await;
        }
        self.runtime
            .spawn(async move { root.join(h, timeout).await })
            .await
            .map_err(|e| ProcessError::host_failure(format!("the join was lost: {e}")))?
    }

    /// Whether it is running.
    ///
    /// # Errors
    /// `closed` after [`Process::close`] (as are all of the accessors below).
    pub fn is_alive(&self) -> Result<bool, ProcessError> {
        self.root.is_alive(self.handle)
    }

    /// Python's `exitcode`: none while running.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn exitcode(&self) -> Result<Option<i32>, ProcessError> {
        self.root.exitcode(self.handle)
    }

    /// How it ended, none while running.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn status(&self) -> Result<Option<ExitStatus>, ProcessError> {
        self.root.status(self.handle)
    }

    /// The limit that ended it ([`LIMIT_EXIT_CODE`]), if one did; none for a process
    /// that is running, or ended in any other way (also by `exit(124)`).
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn limit_hit(&self) -> Result<Option<LimitHit>, ProcessError> {
        self.root.limit_hit(self.handle)
    }

    /// The value its target returned, once it has ended with exit code 0: the guest
    /// SDK serialises a target's return value (`()` included), and this decodes it as `T`,
    /// which must be the target's return type. None while it runs, and when it ended in
    /// any other way (`exit(n)`, a panic, a signal, a limit).
    ///
    /// # Errors
    /// `invalid-state` before it was started ("process not started"); `closed` after
    /// [`Process::close`]; `invalid-argument` when the value does not decode as `T`;
    /// `limit-exceeded` when the host could not keep the value (the `held` limit).
    pub fn result<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, ProcessError> {
        let Some(bytes) = self.result_bytes()? else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes).map(Some).map_err(|e| {
            ProcessError::invalid_argument(format!(
                "cannot decode the result of {} as {}: {e}",
                self.name().unwrap_or_default(),
                std::any::type_name::<T>()
            ))
        })
    }

    /// [`Process::result`] as the bytes the guest SDK serialised.
    ///
    /// # Errors
    /// As [`Process::result`], but for decoding.
    pub fn result_bytes(&self) -> Result<Option<Vec<u8>>, ProcessError> {
        self.root.result(self.handle)
    }

    /// Its pid, none before start.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn pid(&self) -> Result<Option<u64>, ProcessError> {
        self.root.pid(self.handle)
    }

    /// Its name.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn name(&self) -> Result<String, ProcessError> {
        self.root.name_of(self.handle)
    }

    /// Its daemon flag.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn daemon(&self) -> Result<bool, ProcessError> {
        self.root.daemon_of(self.handle)
    }

    /// Ends it at once with exit code -15.
    ///
    /// # Errors
    /// `invalid-state` before it was started ("can only terminate a started process");
    /// `closed` after [`Process::close`]. A process that has ended already is no error.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.root.signal(self.handle, Signal::Term)
    }

    /// Ends it at once with exit code -9.
    ///
    /// # Errors
    /// As [`Process::terminate`] ("can only kill a started process").
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.root.signal(self.handle, Signal::Kill)
    }

    /// Releases it; later calls fail with "process object is closed".
    ///
    /// # Errors
    /// `invalid-state` while it is still running ("Cannot close a process while it is still
    /// running. You should first call join() or terminate()."). Closing twice is no error.
    pub fn close(&self) -> Result<(), ProcessError> {
        self.root.close(self.handle)
    }

    /// What it wrote to stdout so far (empty unless output is captured).
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn stdout(&self) -> Result<Vec<u8>, ProcessError> {
        Ok(self
            .root
            .captured(self.handle)?
            .map(|c| c.stdout())
            .unwrap_or_default())
    }

    /// A reader of what it writes to stdout, from the start, as it writes it: a read
    /// returns the bytes written since the last one, waits while there are none and the
    /// process runs, and returns end-of-file once it has ended and everything was read (at
    /// once when output is not captured, or before it was started). Each reader reads the
    /// whole stream; the output stays captured for [`Process::stdout`] too.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn stdout_reader(&self) -> Result<OutputReader<'_>, ProcessError> {
        self.reader(false)
    }

    /// [`Process::stdout_reader`] for stderr.
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn stderr_reader(&self) -> Result<OutputReader<'_>, ProcessError> {
        self.reader(true)
    }

    fn reader(&self, stderr: bool) -> Result<OutputReader<'_>, ProcessError> {
        Ok(OutputReader {
            process: self,
            captured: self.root.captured(self.handle)?,
            stderr,
            offset: 0,
        })
    }

    /// What it wrote to stderr so far (empty unless output is captured).
    ///
    /// # Errors
    /// `closed` after [`Process::close`].
    pub fn stderr(&self) -> Result<Vec<u8>, ProcessError> {
        Ok(self
            .root
            .captured(self.handle)?
            .map(|c| c.stderr())
            .unwrap_or_default())
    }
}

/// A reader of a process's captured stdout or stderr as it is written
/// ([`Process::stdout_reader`]).
pub struct OutputReader<'p> {
    process: &'p Process,
    captured: Option<Captured>,
    stderr: bool,
    offset: u64,
}

impl std::io::Read for OutputReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        /// How long a read waits for the process's end before it looks for new bytes.
        const POLL: Duration = Duration::from_millis(10);
        let Some(captured) = &self.captured else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Looked at before the bytes: a process that had ended then wrote all it will.
            let alive = self
                .process
                .is_alive()
                .map_err(|e| std::io::Error::other(e.message))?;
            let n = captured.read_at(self.stderr, self.offset, buf);
            if n > 0 {
                self.offset += n as u64;
                return Ok(n);
            }
            if !alive {
                return Ok(0);
            }
            // Running: wait for new bytes or its end.
            let _ = self.process.join(Some(POLL));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.root.release(self.handle);
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("handle", &self.handle)
            .field("name", &self.name().ok())
            .finish()
    }
}

/// Whether `a` and `b` are one file (the same device and inode: also through a link).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Locks `m`, also when a thread panicked while holding it: every structure behind a lock
/// of this crate is consistent between statements, so a poisoned lock holds usable data.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
