//! The `native` backend: every child process is a real OS process that maps the parent's
//! compiled program, runs the target under the same model ([`crate::model`]) and exits
//! with the process's exit code. The run's root host forks its children from a fork server
//! ([`super::zygote`]: this executable run once as `wasmproc __child --zygote`, with the
//! engine made and each program mapped); a native child process starting children of its
//! own runs this executable again as `wasmproc __child` for each (and so does the root
//! host if its fork server cannot start). Both run the same code, [`run_spec`].
//!
//! What crosses the OS boundary:
//! - the child's description ([`ChildSpec`]): on its stdin, which an executed child reads
//!   to the end, or in the request to the fork server (the guest itself gets an empty
//!   stdin; a forked child's stdin is `/dev/null`);
//! - a *parent pipe*: the parent holds the write end; the child sees end-of-file when its
//!   parent process has ended, which is `parent_process().is_alive()`;
//! - the run's *lifeline*: the run's root host holds the write end and closes it when the
//!   run ends, or the OS closes it when the host dies (even by SIGKILL); every process of
//!   the run then kills itself, so no orphan outlives its run;
//! - stdout and stderr: inherited, or files in the run's capture directory.
//!
//! terminate and kill are SIGTERM and SIGKILL; the exit code comes from the wait status.

use crate::backend::wasm::WasmEngine;
use crate::backend::zygote::{self, ChildFds, StartError, Zygote};
use crate::backend::{Backend, Control, SpawnRequest, Spawned};
use crate::config::OutputMode;
use crate::error::{Error, ProcessError};
use crate::exit::{ExitStatus, Signal};
use crate::model::{
    NewCtx, ParentLink, ProcessCore, ProcessCtx, ProgramSource, Programs, RemoteSync, RunShared,
    SyncHome, Tree, lock,
};
use crate::output::ProcessOutput;
use crate::sync::Registry;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// The hidden subcommand a native child runs.
pub const CHILD_SUBCOMMAND: &str = "__child";

/// `<exe> __child --probe` prints this (and the version and [`PROTOCOL`]), so that a host
/// can check that its native executable speaks the same protocol before starting any
/// process.
const PROBE_REPLY: &str = "wasmproc-native-child";

/// The version of what a host and its native executable exchange (a child's description,
/// the fork server's requests and reports): raised with every change of it, so that a host
/// refuses an executable of another build of the same version instead of misreading it.
/// 2: the fork server's spares (session 5).
const PROTOCOL: u32 = 2;

/// What a native child is told on its stdin.
#[derive(Serialize, Deserialize)]
struct ChildSpec {
    artifact: PathBuf,
    display_name: String,
    targets: Vec<String>,
    target: String,
    args: Vec<u8>,
    name: String,
    daemon: bool,
    identity: Vec<u32>,
    parent_name: String,
    parent_pid: u64,
    parent_daemon: bool,
    authkey: [u8; 32],
    output: u8,
    limits: crate::config::Limits,
    grants: crate::config::Grants,
    epoch_tick_ms: u64,
    run_dir: PathBuf,
    capture_dir: Option<PathBuf>,
    lifeline_fd: RawFd,
    parent_fd: RawFd,
    slot_fd: RawFd,
    exe: PathBuf,
    /// The token of the sync objects the parent shared (0: none).
    sync_token: u64,
    /// The other programs the host allows, compiled, for this process's own children.
    programs: Vec<AllowedProgram>,
}

/// An allowed program as a native child receives it: compiled, by artifact.
#[derive(Serialize, Deserialize)]
struct AllowedProgram {
    name: String,
    artifact: PathBuf,
    display_name: String,
    targets: Vec<String>,
}

/// What the processes of one run share across OS processes.
pub(crate) struct NativeRun {
    /// The run's directory: `slots/` (one lock file per live process, for the run-wide
    /// process limit) and, when output is captured, `capture/`.
    run_dir: PathBuf,
    capture_dir: Option<PathBuf>,
    lifeline_read: OwnedFd,
    lifeline_write: Mutex<Option<OwnedFd>>,
    /// Slots of this host's children that have ended (see `take_slot`).
    free_slots: Mutex<Vec<u64>>,
    /// Whether this OS process made the run (and so removes its capture directory).
    owner: bool,
    /// The run's object server (in the run's root host only).
    server: Option<tokio::task::AbortHandle>,
}

impl NativeRun {
    fn new(run_dir: PathBuf, capture: bool) -> std::io::Result<Self> {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        std::fs::create_dir_all(run_dir.join("slots"))?;
        let capture_dir = capture.then(|| run_dir.join("capture"));
        if let Some(dir) = &capture_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(NativeRun {
            run_dir,
            capture_dir,
            lifeline_read: read,
            lifeline_write: Mutex::new(Some(write)),
            free_slots: Mutex::default(),
            owner: true,
            server: None,
        })
    }

    /// Where the run's object server listens.
    fn sync_socket(&self) -> PathBuf {
        self.run_dir.join("sync.sock")
    }

    pub fn capture_dir(&self) -> Option<&Path> {
        self.capture_dir.as_deref()
    }

    /// Takes a free process slot of the run: a lock file under `slots/`, locked through
    /// the returned descriptor, which the child inherits; the kernel releases the lock when
    /// the last holder exits, however it exits.
    ///
    /// The slots of this host's children that have ended are tried first: their files
    /// exist, and creating a file costs more than the rest of the start.
    fn take_slot(&self, limit: u64) -> Result<(OwnedFd, u64), ProcessError> {
        use rustix::fs::{FlockOperation, Mode, OFlags};
        let try_slot = |slot: u64| -> Result<Option<OwnedFd>, ProcessError> {
            let path = self.run_dir.join("slots").join(slot.to_string());
            let fd = rustix::fs::open(
                &path,
                OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| failure("slot", e))?;
            Ok(
                rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
                    .is_ok()
                    .then_some(fd),
            )
        };
        loop {
            let Some(slot) = lock(&self.free_slots).pop() else {
                break;
            };
            if slot < limit
                && let Some(fd) = try_slot(slot)?
            {
                return Ok((fd, slot));
            }
        }
        let start = rand::random::<u64>() % limit.max(1);
        for i in 0..limit {
            let slot = (start + i) % limit;
            if let Some(fd) = try_slot(slot)? {
                return Ok((fd, slot));
            }
        }
        Err(ProcessError::new(
            crate::error::ErrorKind::LimitExceeded,
            format!("limit processes = {limit} reached: the run has {limit} live processes"),
        ))
    }

    /// The child that held `slot` has ended: the next start tries it first.
    fn slot_freed(&self, slot: u64) {
        lock(&self.free_slots).push(slot);
    }

    /// Ends the run: every process of it in another OS process kills itself; returns once
    /// they all have (each held a slot lock until it died).
    pub fn end(&self) {
        lock(&self.lifeline_write).take();
        let Ok(slots) = std::fs::read_dir(self.run_dir.join("slots")) else {
            return;
        };
        for slot in slots.flatten() {
            if let Ok(file) = std::fs::File::open(slot.path()) {
                // Blocks until the process holding this slot (if any) has exited.
                let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared);
            }
        }
    }
}

impl Drop for NativeRun {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        if self.owner {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

/// The backend object.
pub(crate) struct NativeBackend {
    engine: Arc<WasmEngine>,
    exe: PathBuf,
    /// Where this host writes compiled programs and capture directories (removed on drop
    /// by the host that made it).
    work_dir: PathBuf,
    owns_work_dir: bool,
    next_run: std::sync::atomic::AtomicU64,
    /// The fork server that starts this host's children (the run's root host only; a
    /// native child process executes its children).
    zygote: Option<Zygote>,
}

impl NativeBackend {
    pub fn new(engine: Arc<WasmEngine>, exe: Option<PathBuf>) -> Result<Self, Error> {
        let exe = match exe {
            Some(exe) => exe,
            None => std::env::current_exe().map_err(Error::Runtime)?,
        };
        remove_stale_work_dirs();
        probe(&exe)?;
        // One directory per host: several hosts may live in one OS process.
        static HOSTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = HOSTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work_dir = work_root().join(format!("wasmproc-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&work_dir).map_err(|io| Error::WriteFile {
            path: work_dir.clone(),
            io,
        })?;
        Ok(NativeBackend {
            engine,
            zygote: Some(Zygote::new(exe.clone())),
            exe,
            work_dir,
            owns_work_dir: true,
            next_run: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// A new run's shared state (its lifeline, and a capture directory if output is
    /// captured).
    pub fn new_run(&self, output: OutputMode) -> Result<NativeRun, Error> {
        let n = self
            .next_run
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.work_dir.join(format!("run-{n}"));
        NativeRun::new(dir.clone(), output == OutputMode::Capture)
            .map_err(|io| Error::WriteFile { path: dir, io })
    }

    fn artifact(&self, program: &crate::Program) -> Result<PathBuf, ProcessError> {
        let inner = program.inner();
        if let Some(path) = inner.artifact.get() {
            return Ok(path.clone());
        }
        let bytes = inner.component.serialize().map_err(|e| {
            ProcessError::host_failure(format!("cannot serialise the program: {e:#}"))
        })?;
        let path = self
            .work_dir
            .join(format!("program-{}.cwasm", rand::random::<u64>()));
        std::fs::write(&path, bytes).map_err(|e| {
            ProcessError::host_failure(format!("cannot write {}: {e}", path.display()))
        })?;
        Ok(inner.artifact.get_or_init(|| path).clone())
    }

    /// The programs the host allows, compiled, for a child's own children.
    fn allowed_programs(&self, shared: &RunShared) -> Result<Vec<AllowedProgram>, ProcessError> {
        let Some(programs) = shared.programs() else {
            return Ok(Vec::new());
        };
        programs
            .names()
            .into_iter()
            .map(|name| {
                let program = programs.get(&name)?;
                Ok(AllowedProgram {
                    artifact: self.artifact(&program)?,
                    display_name: program.display_name().to_string(),
                    targets: program.targets().to_vec(),
                    name,
                })
            })
            .collect()
    }
}

/// Checks that `exe` is a wasmproc binary of this very version.
fn probe(exe: &Path) -> Result<(), Error> {
    let expected = format!(
        "{PROBE_REPLY} {} protocol {PROTOCOL}",
        env!("CARGO_PKG_VERSION")
    );
    let bad = |why: String| Error::NativeExe {
        exe: exe.to_path_buf(),
        why,
    };
    let out = std::process::Command::new(exe)
        .args([CHILD_SUBCOMMAND, "--probe"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| bad(e.to_string()))?;
    let reply = String::from_utf8_lossy(&out.stdout);
    if reply.trim_end() != expected {
        return Err(bad(format!(
            "it is not wasmproc {} speaking protocol {PROTOCOL} (asked `{CHILD_SUBCOMMAND} \
             --probe`, expected \"{expected}\")",
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(())
}

/// Where hosts keep their work directories (the compiled programs their native children
/// map, the slot lock files, captured output): `$TMPDIR` when it is set, otherwise
/// `/dev/shm` when there is one to write to with room to spare (memory: a file is created
/// there in a few microseconds, against a few hundred on a disk's journal, and every native
/// start creates some; containers often give it only 64 MiB), otherwise the system's
/// temporary directory.
fn work_root() -> PathBuf {
    /// The least free space `/dev/shm` must have to be used.
    const SHM_ROOM: u64 = 512 << 20;
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let writable = || rustix::fs::access(shm, rustix::fs::Access::WRITE_OK).is_ok();
        let roomy = || {
            rustix::fs::statvfs(shm)
                .is_ok_and(|v| v.f_bavail.saturating_mul(v.f_frsize) >= SHM_ROOM)
        };
        if std::env::var_os("TMPDIR").is_none() && shm.is_dir() && writable() && roomy() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// Removes the work directories of hosts that are gone (killed, or never dropped).
fn remove_stale_work_dirs() {
    let Ok(entries) = std::fs::read_dir(work_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("wasmproc-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for NativeBackend {
    fn drop(&mut self) {
        if self.owns_work_dir {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}

struct NativeControl {
    pid: rustix::process::Pid,
    /// The write end of the child's parent pipe: closed when this process ends.
    _parent_pipe: OwnedFd,
}

impl Control for NativeControl {
    fn signal(&self, sig: Signal) {
        let signal = match sig {
            Signal::Term => rustix::process::Signal::TERM,
            Signal::Kill | Signal::Other(_) => rustix::process::Signal::KILL,
        };
        // The process may have ended already; then there is nothing to do.
        let _ = rustix::process::kill_process(self.pid, signal);
    }
}

fn output_code(mode: OutputMode) -> u8 {
    match mode {
        OutputMode::Inherit => 0,
        OutputMode::Prefix => 1,
        OutputMode::Capture => 2,
    }
}

fn output_mode(code: u8) -> OutputMode {
    match code {
        1 => OutputMode::Prefix,
        2 => OutputMode::Capture,
        _ => OutputMode::Inherit,
    }
}

fn failure(what: &str, e: impl std::fmt::Display) -> ProcessError {
    ProcessError::host_failure(format!("cannot start a native process: {what}: {e}"))
}

impl Backend for NativeBackend {
    fn new_tree(&self, config: &crate::Config) -> Result<Tree, Error> {
        let mut run = self.new_run(config.output)?;
        let registry = Registry::new(config.limits.clone());
        let socket = run.sync_socket();
        let listener = {
            let _context = self.engine.runtime().enter();
            tokio::net::UnixListener::bind(&socket).map_err(|io| Error::WriteFile {
                path: socket.clone(),
                io,
            })?
        };
        let server = self
            .engine
            .runtime()
            .spawn(crate::sync::remote::serve(listener, registry.clone()));
        run.server = Some(server.abort_handle());
        Ok(Tree::new(Some(run), SyncHome::Here(registry)))
    }

    fn main_pid(&self) -> u64 {
        u64::from(std::process::id())
    }

    fn spawn(
        &self,
        request: SpawnRequest,
        shared: &Arc<RunShared>,
    ) -> Result<Spawned, ProcessError> {
        let Some(run) = request.tree.native() else {
            return Err(ProcessError::host_failure(
                "internal error: a native process in a run without native state",
            ));
        };
        let artifact = self.artifact(&request.program)?;
        let (parent_read, parent_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| failure("pipe", e))?;
        let (slot, slot_number) = run.take_slot(shared.config.limits.processes)?;
        let lifeline_fd = run.lifeline_read.as_raw_fd();
        let parent_fd = parent_read.as_raw_fd();
        let slot_fd = slot.as_raw_fd();
        let sync = request.tree.sync().clone();
        let programs = self.allowed_programs(shared)?;
        let sync_token = sync.token(request.shares);
        let spec = ChildSpec {
            artifact,
            display_name: request.program.display_name().to_string(),
            targets: request.program.targets().to_vec(),
            target: request.target,
            args: request.args,
            name: request.name,
            daemon: request.daemon,
            identity: request.core.identity().to_vec(),
            parent_name: request.parent.name,
            parent_pid: request.parent.core.pid().unwrap_or(0),
            parent_daemon: request.parent.daemon,
            authkey: *shared.authkey(),
            output: output_code(request.output.mode()),
            limits: shared.config.limits.clone(),
            grants: shared.config.grants.clone(),
            epoch_tick_ms: shared.config.epoch_tick_ms,
            run_dir: run.run_dir.clone(),
            capture_dir: run.capture_dir().map(Path::to_path_buf),
            lifeline_fd,
            parent_fd,
            slot_fd,
            exe: self.exe.clone(),
            sync_token,
            programs,
        };
        let encoded = postcard::to_allocvec(&spec).map_err(|e| failure("encoding", e))?;
        let len = u32::try_from(encoded.len()).map_err(|e| failure("description size", e))?;
        let mut spec = len.to_le_bytes().to_vec();
        spec.extend_from_slice(&encoded);

        let files = match request.output.captured().and_then(|c| c.files()) {
            Some((out, err)) => {
                let open = |p: &Path| std::fs::OpenOptions::new().append(true).open(p);
                Some((
                    open(&out).map_err(|e| failure("capture file", e))?,
                    open(&err).map_err(|e| failure("capture file", e))?,
                ))
            }
            None => None,
        };

        // What reports the child's end, once its pid is known.
        let child_end = |pid| ChildEnd {
            tree: request.tree.clone(),
            core: request.core.clone(),
            pid,
            sync_token,
            slot: slot_number,
        };
        let mut zygote_failed = None;
        if let Some(zygote) = &self.zygote {
            let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
            let fds = ChildFds {
                stdout: files
                    .as_ref()
                    .map_or(stdout.as_fd(), |(out, _)| out.as_fd()),
                stderr: files
                    .as_ref()
                    .map_or(stderr.as_fd(), |(_, err)| err.as_fd()),
                parent: parent_read.as_fd(),
                slot: slot.as_fd(),
                lifeline: run.lifeline_read.as_fd(),
            };
            match zygote.start(&spec, &fds) {
                Ok((pid, ended)) => {
                    drop((parent_read, slot, files));
                    let rpid = i32::try_from(pid)
                        .ok()
                        .and_then(rustix::process::Pid::from_raw)
                        .ok_or_else(|| failure("pid", pid))?;
                    request.core.set_pid(u64::from(pid));
                    let end = child_end(pid);
                    // Started as a wasm process's task is: a parent that joins the child
                    // at once awaits the fork server's report on its own thread, one
                    // wake-up (on this VM, 35 µs or more) fewer than through a task.
                    crate::sched::start(&request.core, self.engine.runtime(), async move {
                        end.report(ended.await.unwrap_or(ExitStatus::FAILURE)).await;
                    });
                    return Ok(Spawned {
                        pid: u64::from(pid),
                        control: Box::new(NativeControl {
                            pid: rpid,
                            _parent_pipe: parent_write,
                        }),
                    });
                }
                // No zygote took the request: the child is executed below.
                Err(StartError::NotSent(why)) => zygote_failed = Some(why),
                Err(StartError::Lost(why)) => return Err(failure("fork server", why)),
                Err(StartError::Fork(e)) => return Err(failure("fork", e)),
            }
        }

        let mut command = tokio::process::Command::new(&self.exe);
        command.arg(CHILD_SUBCOMMAND).stdin(Stdio::piped());
        match files {
            Some((out, err)) => {
                command.stdout(out).stderr(err);
            }
            None => {
                command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
        }
        // SAFETY: the closure runs in the forked child before exec and calls only fcntl,
        // which is async-signal-safe; it clears close-on-exec on exactly the two pipe ends
        // and the slot lock this child must inherit (every other descriptor of the host is
        // close-on-exec).
        unsafe {
            command.pre_exec(move || {
                for fd in [lifeline_fd, parent_fd, slot_fd] {
                    let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                }
                Ok(())
            });
        }
        // Library callers start processes from outside the scheduler; tokio's child
        // handling needs its context.
        let _context = self.engine.runtime().enter();
        let mut child = command.spawn().map_err(|e| {
            let what = format!("cannot run {}", self.exe.display());
            match &zygote_failed {
                Some(why) => failure(&format!("{why}; {what}"), e),
                None => failure(&what, e),
            }
        })?;
        drop(parent_read);
        // The child holds the slot's lock now; this process's copy goes.
        drop(slot);
        let pid = child.id().ok_or_else(|| failure("child", "no pid"))?;
        let raw_pid = i32::try_from(pid).map_err(|e| failure("pid", e))?;
        let rpid = rustix::process::Pid::from_raw(raw_pid).ok_or_else(|| failure("pid", pid))?;
        request.core.set_pid(u64::from(pid));
        let mut stdin = child.stdin.take();
        let end = child_end(pid);
        self.engine.runtime().spawn(async move {
            if let Some(stdin) = stdin.as_mut() {
                // A child that died before reading its description is reported by wait.
                let _ = stdin.write_all(&spec).await;
                let _ = stdin.shutdown().await;
            }
            drop(stdin);
            let status = match child.wait().await {
                Ok(status) => exit_status(status),
                Err(_) => ExitStatus::FAILURE,
            };
            end.report(status).await;
        });
        Ok(Spawned {
            pid: u64::from(pid),
            control: Box::new(NativeControl {
                pid: rpid,
                _parent_pipe: parent_write,
            }),
        })
    }
}

/// What the parent host does once a native child has ended, however it was started.
struct ChildEnd {
    tree: Arc<Tree>,
    core: Arc<ProcessCore>,
    pid: u32,
    sync_token: u64,
    slot: u64,
}

impl ChildEnd {
    async fn report(self, status: ExitStatus) {
        // Its objects go first (a lock it held is released), then its slot is offered to
        // the next start, then its end is told.
        self.tree
            .sync()
            .process_gone(self.pid, self.sync_token)
            .await;
        if let Some(run) = self.tree.native() {
            run.slot_freed(self.slot);
        }
        self.core.exited(status);
    }
}

pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code((code & 0xff) as u8),
        (None, Some(sig)) => ExitStatus::Signaled(Signal::from_number(sig)),
        (None, None) => ExitStatus::FAILURE,
    }
}

/// The engine whose epoch [`on_tick`] advances (a native child has exactly one).
static TICKED: std::sync::OnceLock<wasmtime::Engine> = std::sync::OnceLock::new();
/// The run's lifeline, which [`on_tick`] watches (-1: none yet).
static LIFELINE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The tick signal's handler (`SIGALRM`, from a timer of this process): advances the
/// engine's epoch (a running guest yields to the scheduler at its next check) and, when
/// the run's lifeline has closed, kills this process. Only async-signal-safe calls: an
/// atomic add, `poll`, `read`, `kill`; `errno` is kept.
extern "C" fn on_tick(_signal: libc::c_int) {
    // SAFETY: `__errno_location` is this thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(engine) = TICKED.get() {
        engine.increment_epoch();
    }
    let fd = LIFELINE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a zero timeout never blocks.
        if unsafe { libc::poll(&mut pfd, 1, 0) } == 1 && pfd.revents != 0 {
            let mut buf = [0u8; 16];
            // SAFETY: `fd` is the lifeline's read end, kept open for the process's life;
            // nobody writes to it, so readable means end-of-file and the read returns 0 at
            // once.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n == 0 {
                // SAFETY: signals this very process.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// What watches a native child process, with no thread of its own (a second thread would
/// cost every start a thread, a malloc arena, and a TLB shootdown on every copy-on-write
/// fault after the fork): a timer of this process's CPU time raises `SIGALRM` every tick
/// of it, whose handler ([`on_tick`]) ticks `engine`'s epoch and kills this process when
/// the run's `lifeline` has closed; a task on `runtime` kills it too when the lifeline
/// closes while it waits (so it and its children end at once), and another calls
/// `parent_gone` when the `parent` pipe closes (the parent process has ended). Nobody
/// writes to either pipe: readable means end-of-file.
///
/// The timer counts CPU time, not wall-clock time: the epoch only matters while guest code
/// runs, and a child that sleeps or waits is not woken 200 times a second. (With a wall
/// clock, 300 sleeping children took 60,000 signals a second between them, and starting
/// a 300th child took 4–10 ms.)
fn watch(
    lifeline: OwnedFd,
    parent: OwnedFd,
    engine: &wasmtime::Engine,
    tick_ms: u64,
    runtime: &tokio::runtime::Runtime,
    parent_gone: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    let os = |rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let _ = TICKED.set(engine.clone());
    // The lifeline again, for the scheduler to watch while this process waits (its own
    // descriptor, close-on-exec: the tick handler keeps polling the first, which an
    // `AsyncFd` dropped with the scheduler would close). Non-blocking then holds for every
    // process of the run, which share the pipe: each only reads it once it is readable,
    // which means end-of-file.
    let lifeline_copy = rustix::io::fcntl_dupfd_cloexec(&lifeline, 3)?;
    // Kept open (and watched) for the life of the process.
    LIFELINE.store(
        std::os::fd::IntoRawFd::into_raw_fd(lifeline),
        std::sync::atomic::Ordering::Relaxed,
    );
    // SAFETY: a zeroed sigaction is valid; the handler only makes async-signal-safe calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_tick as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        os(libc::sigaction(
            libc::SIGALRM,
            &action,
            std::ptr::null_mut(),
        ))?;
    }
    let tick = std::time::Duration::from_millis(tick_ms.max(1));
    let every = libc::timespec {
        tv_sec: tick.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(tick.subsec_nanos()),
    };
    // SAFETY: a process-wide timer delivering SIGALRM, whose handler is installed above.
    unsafe {
        let mut event: libc::sigevent = std::mem::zeroed();
        event.sigev_notify = libc::SIGEV_SIGNAL;
        event.sigev_signo = libc::SIGALRM;
        let mut timer: libc::timer_t = std::mem::zeroed();
        os(libc::timer_create(
            libc::CLOCK_PROCESS_CPUTIME_ID,
            &mut event,
            &mut timer,
        ))?;
        let spec = libc::itimerspec {
            it_interval: every,
            it_value: every,
        };
        os(libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()))?;
    }
    let _context = runtime.enter();
    let watched = pipe_watcher(lifeline_copy)?;
    let parent = pipe_watcher(parent)?;
    runtime.spawn(async move {
        if until_closed(watched).await.is_ok() {
            // SAFETY: signals this very process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    });
    runtime.spawn(async move {
        if until_closed(parent).await.is_ok() {
            parent_gone();
        }
    });
    Ok(())
}

/// The read end of a pipe nobody writes to, made non-blocking and registered with the
/// current scheduler, for [`until_closed`].
fn pipe_watcher(read_end: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    rustix::fs::fcntl_setfl(&read_end, rustix::fs::OFlags::NONBLOCK)?;
    // SAFETY: an `OwnedFd` is open and owned by the `AsyncFd` until it is dropped, and
    // always gives the same descriptor.
    unsafe { tokio::io::unix::AsyncFd::register(read_end) }.map_err(|e| e.into_parts().1)
}

/// Waits until the pipe of `fd` is closed at its other end; `Err` when the scheduler shuts
/// down first (the process is ending anyway).
async fn until_closed(fd: tokio::io::unix::AsyncFd<OwnedFd>) -> Result<(), ()> {
    loop {
        let mut ready = fd.readable().await.map_err(drop)?;
        let mut buf = [0u8; 16];
        match rustix::io::read(fd.get_ref(), &mut buf) {
            Ok(0) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return Ok(()),
        }
    }
}

/// The entry point of `wasmproc __child`: runs one native child process and returns its
/// exit code. Errors are reported on stderr with exit code 1 (an internal failure of the
/// host is a failure of the process).
pub fn child_main() -> u8 {
    let mode = std::env::args_os().nth(2);
    if mode.as_ref().is_some_and(|a| a == "--probe") {
        println!(
            "{PROBE_REPLY} {} protocol {PROTOCOL}",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    if mode.as_ref().is_some_and(|a| a == zygote::ZYGOTE_FLAG) {
        let host = std::env::args().nth(3);
        return zygote::zygote_main(host.as_deref());
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

fn run_child() -> anyhow::Result<ExitStatus> {
    use anyhow::Context;
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("failed to read the child description")?;
    run_spec_bytes(&bytes)
}

/// Decodes a child's description and runs it.
fn run_spec_bytes(bytes: &[u8]) -> anyhow::Result<ExitStatus> {
    match decode_spec(bytes)? {
        Some(spec) => {
            let config = child_config(&spec);
            let warm = Warm::new(|runtime| WasmEngine::without_ticker(&config, runtime))?;
            match run_spec(spec, warm, None)? {}
        }
        // The parent died while it was starting this process: there is nobody to report
        // to and nothing to run.
        None => Ok(ExitStatus::FAILURE),
    }
}

/// Decodes a child's description: its length (4 bytes, little-endian) and its postcard
/// encoding; `None` when it is cut short.
fn decode_spec(bytes: &[u8]) -> anyhow::Result<Option<ChildSpec>> {
    use anyhow::Context;
    let declared = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if declared.is_none_or(|n| bytes.len() < 4 + n) {
        return Ok(None);
    }
    let spec =
        postcard::from_bytes(&bytes[4..]).context("failed to decode the child description")?;
    Ok(Some(spec))
}

/// The configuration a native child process runs with.
fn child_config(spec: &ChildSpec) -> crate::Config {
    crate::Config {
        backend: crate::BackendKind::Native,
        output: output_mode(spec.output),
        limits: spec.limits.clone(),
        grants: spec.grants.clone(),
        epoch_tick_ms: spec.epoch_tick_ms,
        native_exe: Some(spec.exe.clone()),
        ..crate::Config::default()
    }
}

/// What the fork server ([`super::zygote`]) makes once for all the children it forks:
/// the engine (without its ticker thread: the server stays single-threaded) and every
/// program it was asked for, mapped and ready to instantiate.
pub(crate) struct ForkServer {
    /// Only for the engine's handle: it has no drivers and no threads; each child drives
    /// its processes on a runtime of its own.
    runtime: tokio::runtime::Runtime,
    engine: Option<WasmEngine>,
    programs: std::collections::HashMap<PathBuf, crate::Program>,
}

/// A child's description and program, ready to run in a forked process (a spare forked
/// before the program was loaded has no program: its child maps it).
pub(crate) struct Prepared {
    spec: ChildSpec,
    program: Option<crate::Program>,
}

impl ForkServer {
    pub fn new() -> std::io::Result<Self> {
        Ok(ForkServer {
            runtime: tokio::runtime::Builder::new_current_thread().build()?,
            engine: None,
            programs: std::collections::HashMap::new(),
        })
    }

    /// Decodes a request and loads what its child needs, once per program (before the
    /// fork, so that every child inherits it).
    pub fn prepare(&mut self, bytes: &[u8]) -> anyhow::Result<Prepared> {
        let spec =
            decode_spec(bytes)?.ok_or_else(|| anyhow::anyhow!("a child description cut short"))?;
        let engine = match &mut self.engine {
            Some(engine) => engine,
            none => none.insert(WasmEngine::without_ticker(
                &child_config(&spec),
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
        let spec =
            decode_spec(bytes)?.ok_or_else(|| anyhow::anyhow!("a child description cut short"))?;
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
    /// none of their code (see [`WasmEngine::rehearse`]).
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
    engine: Arc<WasmEngine>,
}

impl Warm {
    /// A scheduler, and the engine `engine` gives for it (the fork server's, or a new one).
    fn new(
        engine: impl FnOnce(tokio::runtime::Handle) -> Result<WasmEngine, Error>,
    ) -> anyhow::Result<Warm> {
        use anyhow::Context;
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

/// Runs one native child process as `spec` describes it, in this OS process, on `warm`:
/// executed, or forked from the fork server, whose engine and `program` it inherited (a
/// `program` of `None`, an executed child's or a spare's forked before its program was
/// loaded, is mapped here). Everything else (threads, connections) is made here. It
/// returns only an error; once the process has run, it ends here ([`end_now`]).
fn run_spec(
    spec: ChildSpec,
    warm: Warm,
    program: Option<crate::Program>,
) -> anyhow::Result<std::convert::Infallible> {
    use anyhow::Context;
    // One guest process runs here (its children are OS processes of their own).
    super::run_last_process_only();
    // The inherited descriptors are this process's alone: its own children get theirs.
    for fd in [spec.lifeline_fd, spec.parent_fd, spec.slot_fd] {
        // SAFETY: these descriptors were inherited open, for this process.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
            .context("an inherited descriptor is not open")?;
    }

    // SAFETY: the lifeline and parent-pipe descriptors were inherited for this process's
    // watcher (see `watch`), open, and nothing else here uses them.
    let (lifeline_watched, parent_watched) = unsafe {
        (
            OwnedFd::from_raw_fd(spec.lifeline_fd),
            OwnedFd::from_raw_fd(spec.parent_fd),
        )
    };
    let lifeline = rustix::io::dup(&lifeline_watched).context("the run's lifeline is not open")?;

    let config = child_config(&spec);
    let Warm { runtime, engine } = warm;
    let program = match program {
        Some(program) => program,
        None => engine.load_artifact(&spec.artifact, spec.display_name, spec.targets)?,
    };
    let parent_identity = spec.identity[..spec.identity.len().saturating_sub(1)].to_vec();
    let parent = ProcessCore::running(parent_identity, spec.parent_pid);
    let parent_core = parent.clone();
    // From here on: the engine's ticks, the run's lifeline, the parent's end.
    watch(
        lifeline_watched,
        parent_watched,
        engine.engine(),
        config.epoch_tick_ms,
        &runtime,
        move || parent_core.exited(ExitStatus::Signaled(Signal::Kill)),
    )
    .context("failed to start watching the run and the parent")?;
    let backend = NativeBackend {
        engine: engine.clone(),
        exe: spec.exe,
        work_dir: spec
            .artifact
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir),
        owns_work_dir: false,
        next_run: std::sync::atomic::AtomicU64::new(1),
        zygote: None,
    };
    let me = u64::from(std::process::id());
    let shared = Arc::new(RunShared::new(
        Box::new(backend),
        config.clone(),
        Some(spec.authkey),
        me << 24,
    ));
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
    shared.set_programs(Programs::new(engine.clone(), allowed));
    // Grandchildren inherit the same lifeline, through this duplicate (close-on-exec, so
    // only children that are handed it get it).
    rustix::io::fcntl_setfd(&lifeline, rustix::io::FdFlags::CLOEXEC)?;
    let run = NativeRun {
        capture_dir: spec.capture_dir,
        lifeline_read: lifeline,
        lifeline_write: Mutex::new(None),
        free_slots: Mutex::default(),
        owner: false,
        server: None,
        run_dir: spec.run_dir,
    };
    let remote = RemoteSync::new(run.sync_socket(), spec.name.clone(), spec.sync_token);
    if remote.has_shares() {
        // Claim the shared objects at once: until then the run's server keeps them for
        // this process.
        runtime
            .block_on(remote.client())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let ctx = ProcessCtx::new(NewCtx {
        shared,
        tree: Arc::new(Tree::new(Some(run), SyncHome::Server(remote.clone()))),
        program: Some(program),
        me: ProcessCore::running(spec.identity, me),
        name: spec.name.clone(),
        daemon: spec.daemon,
        parent: Some(ParentLink {
            core: parent,
            name: spec.parent_name,
            daemon: spec.parent_daemon,
        }),
        output: match config.output {
            // The parent already made this process's stdout and stderr its files.
            OutputMode::Capture => ProcessOutput::inherit_bounded(config.limits.output),
            mode => ProcessOutput::new(mode, &spec.name, config.limits.output, None),
        },
        shares: crate::model::Shares::None,
    });
    let status = runtime.block_on(async {
        let status = engine.run_target(ctx, spec.target, spec.args).await;
        // Posts not sent yet are put before the process is seen to end.
        remote.flush().await;
        status
    });
    end_now(status)
}

/// Ends this native child process with `status`'s exit code, now. Its guest has ended, its
/// posts are sent and its output is flushed here; nothing else it holds needs tearing
/// down: the kernel frees its memory and closes its descriptors. Dropping the engine (its
/// linker of every WASI function), the scheduler and the store, and running the C
/// library's exit handlers, took about 100 µs of a forked child's life; the exit then has
/// more memory to free, so a start+join gains about 40 µs (alternating `perf` traces).
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
