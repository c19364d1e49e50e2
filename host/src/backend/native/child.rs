//! The child's side of the native backend: `wasmproc __child` ([`child_main`]) and the
//! fork server's forked children run one process from its description ([`run_spec`]) under
//! the same model as every process, and end with its exit code.

use super::run::{NativeRun, RunDir};
use super::spec::ChildSpec;
use super::{NativeBackend, timer};
use crate::config::OutputMode;
use crate::engine::Engine;
use crate::error::Error;
use crate::exit::ExitStatus;
use crate::model::{
    Args, Entry, HostState, NewCtx, NewHost, ParentLink, ProcessCore, ProcessCtx, Run,
};
use crate::output::ProcessOutput;
use crate::program::{Program, ProgramSource, Programs};
use crate::sync::client::Remote;
use crate::sync::{Link, Shares};
use anyhow::Context;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How long a native child that ends waits for the events of its own children to reach
/// the run's root host (the server answers each at once; this bounds a host that is gone).
const EVENTS_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The entry point of `wasmproc __child`: runs one native child process (or, with
/// `--zygote`, the fork server; with `--probe`, says what it is) and returns its exit code.
/// Errors are reported on stderr with exit code 1 (an internal failure of the host is a
/// failure of the process).
pub(crate) fn child_main() -> u8 {
    let mode = std::env::args_os().nth(2);
    if mode.as_ref().is_some_and(|a| a == "--probe") {
        println!(
            "{}",
            super::probe_reply(!crate::hooks::child_hooks().is_empty())
        );
        return 0;
    }
    if mode
        .as_ref()
        .is_some_and(|a| a == super::fork_server::FORK_SERVER_FLAG)
    {
        let host = std::env::args().nth(3);
        return super::fork_server::server_main(host.as_deref());
    }
    child_exit_code(run_child())
}

/// The exit code of a native child process that ran to `result`.
fn child_exit_code(result: anyhow::Result<ExitStatus>) -> u8 {
    match result {
        Ok(status) => match status {
            ExitStatus::Code(c) => c,
            ExitStatus::Signaled(_) => 1,
        },
        Err(e) => {
            eprintln!("wasmproc: native child failed: {e:#}");
            1
        }
    }
}

/// An executed child: reads its description on stdin and runs it.
fn run_child() -> anyhow::Result<ExitStatus> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("failed to read the child description")?;
    match ChildSpec::decode(&bytes)? {
        Some(spec) => {
            let config = spec.config();
            let warm = Warm::new(|runtime| Engine::without_ticker(&config, runtime))?;
            match run_spec(spec, warm, None)? {}
        }
        // The parent died while it was starting this process: there is nobody to report
        // to and nothing to run.
        None => Ok(ExitStatus::FAILURE),
    }
}

/// What the fork server makes once for all the children it forks: the engine (without
/// its ticker thread: the server stays single-threaded) and every program it was asked
/// for, mapped and ready to instantiate.
pub(crate) struct Preloaded {
    /// Only for the engine's handle: it has no drivers and no threads; each child drives
    /// its processes on a runtime of its own.
    runtime: tokio::runtime::Runtime,
    engine: Option<Engine>,
    programs: HashMap<PathBuf, Program>,
}

/// A child's description and program, ready to run in a forked process (a spare forked
/// before the program was loaded has no program: its child maps it).
pub(crate) struct Prepared {
    spec: ChildSpec,
    program: Option<Program>,
}

fn decode_whole(bytes: &[u8]) -> anyhow::Result<ChildSpec> {
    ChildSpec::decode(bytes)?.ok_or_else(|| anyhow::anyhow!("a child description cut short"))
}

impl Preloaded {
    pub fn new() -> std::io::Result<Self> {
        Ok(Preloaded {
            runtime: tokio::runtime::Builder::new_current_thread().build()?,
            engine: None,
            programs: HashMap::new(),
        })
    }

    /// Decodes a request and loads what its child needs, once per program (before the
    /// fork, so that every child inherits it).
    pub fn prepare(&mut self, bytes: &[u8]) -> anyhow::Result<Prepared> {
        let spec = decode_whole(bytes)?;
        let engine = match &mut self.engine {
            Some(engine) => engine,
            none => none.insert(Engine::without_ticker(
                &spec.config(),
                self.runtime.handle().clone(),
            )?),
        };
        let program = match self.programs.get(&spec.artifact) {
            Some(program) => program.clone(),
            None => {
                let program = engine.load_artifact(
                    &spec.artifact,
                    spec.display_name.clone(),
                    spec.targets.clone(),
                )?;
                self.programs.insert(spec.artifact.clone(), program.clone());
                program
            }
        };
        Ok(Prepared {
            spec,
            program: Some(program),
        })
    }

    /// Whether the server has made its engine (it does with its first request): a spare
    /// is forked only then.
    pub fn has_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// In a spare (a process forked before its request came): decodes the request and
    /// finds its program among those the spare inherited.
    pub fn lookup(&self, bytes: &[u8]) -> anyhow::Result<Prepared> {
        let spec = decode_whole(bytes)?;
        let program = self.programs.get(&spec.artifact).cloned();
        Ok(Prepared { spec, program })
    }

    /// In a forked process, before or after its request: the scheduler, and the server's
    /// engine driven by it.
    pub fn warm(&mut self) -> anyhow::Result<Warm> {
        let engine = self
            .engine
            .take()
            .ok_or_else(|| anyhow::anyhow!("the fork server has no engine"))?;
        Warm::new(|runtime| Ok(engine.with_runtime(runtime)))
    }

    /// In a spare, before its request: instantiates each program it has once, running
    /// none of their code (see [`Engine::rehearse`]).
    pub fn rehearse(&self, warm: &Warm) {
        for program in self.programs.values() {
            warm.runtime.block_on(warm.engine.rehearse(program));
        }
    }

    /// In a forked child: runs the child of `prepared`, which got the lifeline, parent-pipe
    /// and slot descriptors `fds` (their numbers in this process), on `warm` (made now
    /// when `None`); returns its exit code.
    pub fn run_forked(
        &mut self,
        prepared: anyhow::Result<Prepared>,
        warm: Option<anyhow::Result<Warm>>,
        fds: [RawFd; 3],
    ) -> u8 {
        let run = prepared.and_then(|Prepared { mut spec, program }| {
            [spec.lifeline_fd, spec.parent_fd, spec.slot_fd] = fds;
            let warm = warm.unwrap_or_else(|| self.warm())?;
            match run_spec(spec, warm, program)? {}
        });
        child_exit_code(run)
    }
}

/// What a native child process makes before it needs its description: its scheduler and
/// the engine it drives. A spare of the fork server makes it before its request comes.
pub(crate) struct Warm {
    runtime: tokio::runtime::Runtime,
    engine: Arc<Engine>,
}

impl Warm {
    /// A scheduler, and the engine `engine` gives for it (the fork server's, or a new one).
    fn new(
        engine: impl FnOnce(tokio::runtime::Handle) -> Result<Engine, Error>,
    ) -> anyhow::Result<Warm> {
        // One thread is enough for one process (and its children's bookkeeping), and it
        // starts faster than a pool.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .enable_io()
            .build()
            .context("failed to start the scheduler")?;
        let engine = engine(runtime.handle().clone())?;
        Ok(Warm {
            runtime,
            engine: Arc::new(engine),
        })
    }
}

/// The descriptors a child inherited: the run's lifeline and the parent pipe (for the
/// child's watch, [`timer::watch`]), and a duplicate of the lifeline for its own children.
struct Inherited {
    lifeline_watched: OwnedFd,
    parent_watched: OwnedFd,
    lifeline: OwnedFd,
}

impl Inherited {
    /// Takes the descriptors `spec` names; they are this process's alone (close-on-exec:
    /// its own children get theirs).
    fn take(spec: &ChildSpec) -> anyhow::Result<Self> {
        for fd in [spec.lifeline_fd, spec.parent_fd, spec.slot_fd] {
            // SAFETY: these descriptors were inherited open, for this process.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
                .context("an inherited descriptor is not open")?;
        }
        // SAFETY: the lifeline and parent-pipe descriptors were inherited for this
        // process's watch, open, and nothing else here uses them.
        let (lifeline_watched, parent_watched) = unsafe {
            (
                OwnedFd::from_raw_fd(spec.lifeline_fd),
                OwnedFd::from_raw_fd(spec.parent_fd),
            )
        };
        // Grandchildren inherit the same lifeline, through this duplicate (close-on-exec,
        // so only children that are handed it get it).
        let lifeline = rustix::io::fcntl_dupfd_cloexec(&lifeline_watched, 3)
            .context("the run's lifeline is not open")?;
        Ok(Inherited {
            lifeline_watched,
            parent_watched,
            lifeline,
        })
    }
}

/// Runs one native child process as `spec` describes it, in this OS process, on `warm`:
/// executed, or forked from the fork server, whose engine and `program` it inherited (a
/// `program` of `None`, an executed child's or a spare's forked before its program was
/// loaded, is mapped here). Everything else (threads, connections) is made here. It
/// returns only an error; once the process has run, it ends here ([`end_now`]).
fn run_spec(
    spec: ChildSpec,
    warm: Warm,
    program: Option<Program>,
) -> anyhow::Result<std::convert::Infallible> {
    // One guest process runs here (its children are OS processes of their own).
    crate::engine::run_last_process_only();
    let inherited = Inherited::take(&spec)?;
    let Warm { runtime, engine } = warm;
    let program = match program {
        Some(program) => program,
        None => engine.load_artifact(
            &spec.artifact,
            spec.display_name.clone(),
            spec.targets.clone(),
        )?,
    };
    let parent_identity = spec.identity[..spec.identity.len().saturating_sub(1)].to_vec();
    let parent = ProcessCore::running(parent_identity, spec.parent_pid);
    let parent_core = parent.clone();
    // From here on: the engine's ticks, the run's lifeline, the parent's end.
    timer::watch(
        inherited.lifeline_watched,
        inherited.parent_watched,
        program.wasmtime(),
        spec.epoch_tick_ms,
        &runtime,
        move || parent_core.parent_gone(),
    )
    .context("failed to start watching the run and the parent")?;
    let entry = Entry::Target {
        name: spec.target.clone(),
        args: Args::uncounted(spec.args.clone()),
    };
    let run_dir = spec.run_dir.clone();
    let ctx = child_ctx(spec, &engine, &runtime, program, parent, inherited.lifeline)?;
    let me = ctx.core().clone();
    let run = ctx.run().clone();
    // A native child is signalled by the OS, not through the model.
    let (_never, signals) = tokio::sync::watch::channel(None);
    let status = runtime.block_on(crate::model::supervise(ctx, entry, signals));
    // The events of its own children, for the run's root host, before it is gone.
    runtime.block_on(run.link.flush_events(EVENTS_FLUSH_LIMIT));
    if let Some(hit) = me.limit_hit() {
        // Which limit ended it, for its parent, which sees only the exit code (if the
        // file cannot be written, the parent sees a plain exit code 124).
        let _ = std::fs::write(
            super::limit_record(&run_dir, std::process::id()),
            hit.to_record(),
        );
    }
    if status == ExitStatus::SUCCESS
        && let Some(bytes) = me.take_result()
    {
        // The value its target returned, for its parent (if the file cannot be written,
        // the parent sees no result).
        let _ = std::fs::write(super::result_record(&run_dir, std::process::id()), bytes);
    }
    end_now(status)
}

/// The context of the child `spec` describes: a host of its own (whose children are
/// executed), in the run it shares with its parent, its sync objects served by the run's
/// root host.
fn child_ctx(
    spec: ChildSpec,
    engine: &Arc<Engine>,
    runtime: &tokio::runtime::Runtime,
    program: Program,
    parent: Arc<ProcessCore>,
    lifeline: OwnedFd,
) -> anyhow::Result<Arc<ProcessCtx>> {
    let config = spec.config();
    let work_dir = spec
        .artifact
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let backend = NativeBackend::for_child(runtime.handle().clone(), spec.exe.clone(), work_dir);
    let dir = RunDir::inherited(spec.run_dir, spec.capture_dir, lifeline);
    let socket = dir.sync_socket();
    let run_part = NativeRun::new(backend.host.clone(), dir, None);
    let allowed = spec
        .programs
        .into_iter()
        .map(|p| {
            let source = ProgramSource::Artifact {
                path: p.artifact,
                display_name: p.display_name,
                targets: p.targets,
            };
            (p.name, source)
        })
        .collect();
    let host = HostState::new(
        NewHost {
            backend: Box::new(backend),
            runner: engine.clone(),
            runtime: runtime.handle().clone(),
            config: config.clone(),
            authkey: Some(spec.authkey),
            programs: Programs::new(engine.clone(), allowed),
        },
        std::process::id(),
    );
    let remote = Remote::new(socket, spec.name.clone(), spec.sync_token);
    // Claim the shared objects at once: until then the run's server keeps them for this
    // process.
    runtime
        .block_on(remote.claim_shares())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = Arc::new(Run::new(Box::new(run_part), Link::Server(remote)));
    let output = match config.output {
        // The parent already made this process's stdout and stderr its files.
        OutputMode::Capture => ProcessOutput::inherit_bounded(config.limits.output),
        mode => ProcessOutput::new(mode, &spec.name, config.limits.output, None),
    };
    let me = u64::from(std::process::id());
    let bounds = crate::model::Bounds {
        limits: Arc::new(spec.limits.clone()),
        grants: Arc::new(spec.grants.clone()),
    };
    Ok(ProcessCtx::new(NewCtx {
        bounds,
        host,
        run,
        program: Some(program),
        me: ProcessCore::running(spec.identity, me),
        name: spec.name,
        daemon: spec.daemon,
        parent: Some(ParentLink {
            core: parent,
            name: spec.parent_name,
            daemon: spec.parent_daemon,
        }),
        output,
        shares: Shares::None,
        announce_end: None,
    }))
}

/// Ends this native child process with `status`'s exit code, now. Its guest has ended, its
/// posts are sent and its output is flushed here; nothing else it holds needs tearing
/// down: the kernel frees its memory and closes its descriptors, sooner than dropping the
/// engine (its linker of every WASI function), the scheduler and the store, and running
/// the C library's exit handlers, would.
fn end_now(status: ExitStatus) -> ! {
    exit_now(child_exit_code(Ok(status)))
}

/// The descriptor on which this native child tells its host its exit code ([`exit_now`]),
/// if it has one (a child that ran on a spare of the fork server: its request socket).
static TELL_END: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Makes this native child tell its exit code on `socket` when it ends.
pub(crate) fn tell_end_on(socket: OwnedFd) {
    use std::os::fd::IntoRawFd;
    TELL_END.store(socket.into_raw_fd(), std::sync::atomic::Ordering::Relaxed);
}

/// Ends this native child process with exit code `code`, now: its streams flushed, and
/// `code` told on its [`TELL_END`] socket, the last thing before `_exit` (its host takes
/// it as the wait status once the process has exited).
pub(crate) fn exit_now(code: u8) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let fd = TELL_END.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `tell_end_on` gave this process's ownership of the descriptor away to
        // `TELL_END`; nothing else closes it.
        let socket = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = rustix::net::send(socket, &[code], rustix::net::SendFlags::NOSIGNAL);
    }
    // SAFETY: `_exit` ends the process without running destructors or exit handlers; the
    // streams this process writes were flushed above.
    unsafe { libc::_exit(i32::from(code)) }
}
