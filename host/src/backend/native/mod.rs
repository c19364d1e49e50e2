//! The `native` backend: every child process is a real OS process that maps the parent's
//! compiled program, runs the target under the same model ([`crate::model`]) and exits
//! with the process's exit code. The run's root host forks its children from a fork server
//! ([`fork_server`]: this executable run once as `wasmproc __child --zygote`, with the
//! engine made and each program mapped); a native child process starting children of its
//! own runs this executable again as `wasmproc __child` for each (and so does the root
//! host if its fork server cannot start). Both run the same code ([`child`]).
//!
//! - `spawn.rs`: starting a child, through the fork server or by executing it;
//! - `run.rs`: what a run shares across its OS processes (its directory, process slots,
//!   lifeline);
//! - `spec.rs`: the child's description;
//! - `child.rs`: the child's side, from its description to its exit;
//! - `timer.rs`: the child's epoch ticks and its watch on the run and its parent.
//!
//! What crosses the OS boundary:
//! - the child's description ([`spec::ChildSpec`]): on its stdin, which an executed child
//!   reads to the end, or in the request to the fork server (the guest itself gets an empty
//!   stdin; a forked child's stdin is `/dev/null`);
//! - a *parent pipe*: the parent holds the write end; the child sees end-of-file when its
//!   parent process has ended, which is `parent_process().is_alive()`;
//! - the run's *lifeline*: the run's root host holds the write end and closes it when the
//!   run ends, or the OS closes it when the host dies (even by SIGKILL); every process of
//!   the run then kills itself, so no orphan outlives its run;
//! - stdout and stderr: inherited, or files in the run's capture directory;
//! - sync objects: served by the run's root host on a socket in the run's directory
//!   ([`crate::sync::remote`]).
//!
//! terminate and kill are SIGTERM and SIGKILL; the exit code comes from the wait status.

mod child;
mod fork_server;
mod hugetext;
mod run;
mod spawn;
mod spec;
mod timer;

pub(crate) use child::child_main;

use self::fork_server::ForkServer;
use self::run::{NativeRun, RunDir};
use super::{Backend, BackendRun};
use crate::config::{Config, OutputMode};
use crate::error::Error;
use crate::sync::{Link, Registry};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The file in a host's work directory whose lock the host and its native children take
/// for each prefixed write ([`crate::output::share_prefixed_writes`]).
const OUTPUT_LOCK: &str = "output.lock";

/// The mode of a host's work directory: its owner's only.
const WORK_DIR_MODE: u32 = 0o700;

/// Where a native child of `pid` in the run at `run_dir` records the limit that ended it
/// ([`crate::exit::LimitHit::to_record`]), for its parent to read once it has exited.
fn limit_record(run_dir: &Path, pid: u32) -> PathBuf {
    run_dir.join(format!("limit-{pid}"))
}

/// Where a native child of `pid` in the run at `run_dir` leaves its result (the value its
/// target returned), for its parent to read once it has exited with exit code 0.
fn result_record(run_dir: &Path, pid: u32) -> PathBuf {
    run_dir.join(format!("result-{pid}"))
}

/// The hidden subcommand a native child runs.
pub const CHILD_SUBCOMMAND: &str = "__child";

/// `<exe> __child --probe` prints this (and the version and [`PROTOCOL`]), so that a host
/// can check that its native executable speaks the same protocol before starting any
/// process.
const PROBE_REPLY: &str = "wasmproc-native-child";

/// The version of what a host and its native executable exchange (a child's description,
/// the fork server's requests and reports): raised with every change of it, so that a host
/// refuses an executable of another build of the same version instead of misreading it.
/// 2: the fork server's spares. 3: limits and grants of a child's own, and the embedder's
/// hooks.
const PROTOCOL: u32 = 3;

/// The backend object.
pub(crate) struct NativeBackend {
    host: Arc<NativeHost>,
}

/// What every run of a native host shares.
struct NativeHost {
    exe: PathBuf,
    /// Where this host writes compiled programs and run directories (removed on drop by
    /// the host that made it).
    work_dir: PathBuf,
    owns_work_dir: bool,
    next_run: AtomicU64,
    /// The fork server that starts this host's children (the run's root host only; a
    /// native child process executes its children).
    fork_server: Option<ForkServer>,
    /// The scheduler the ends of children are awaited on.
    runtime: tokio::runtime::Handle,
    /// The parent pipe of this OS process's children (read end, write end): every child
    /// inherits the read end, and this process holds the write end until it exits, so
    /// that its children see end-of-file when it has ended (one pipe for all of them: a
    /// live child costs its parent no descriptor of its own for it).
    parent_pipe: std::sync::OnceLock<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
}

impl NativeHost {
    /// The parent pipe of this OS process's children, made by the first start.
    fn parent_pipe(
        &self,
    ) -> Result<&(std::os::fd::OwnedFd, std::os::fd::OwnedFd), crate::error::ProcessError> {
        if let Some(pipe) = self.parent_pipe.get() {
            return Ok(pipe);
        }
        let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| spawn::os_failure("pipe", e))?;
        // Another start may have made one first: then that one is the pipe.
        let _ = self.parent_pipe.set(pipe);
        self.parent_pipe
            .get()
            .ok_or_else(|| spawn::failure("pipe", "no parent pipe"))
    }
}

impl NativeBackend {
    /// The backend of a root host, whose children run `exe` (this executable by default).
    /// With `hooked`, the host has [`crate::Hooks`], which `exe` must run too.
    pub fn new(
        runtime: tokio::runtime::Handle,
        exe: Option<PathBuf>,
        hooked: bool,
    ) -> Result<Self, Error> {
        let exe = match exe {
            Some(exe) => exe,
            None => std::env::current_exe().map_err(Error::Runtime)?,
        };
        raise_open_files_limit();
        remove_stale_work_dirs();
        probe(&exe, hooked)?;
        let work_dir = make_work_dir()?;
        crate::output::share_prefixed_writes(&work_dir.join(OUTPUT_LOCK));
        Ok(Self::with(NativeHost {
            fork_server: Some(ForkServer::new(exe.clone())),
            exe,
            work_dir,
            owns_work_dir: true,
            next_run: AtomicU64::new(1),
            runtime,
            parent_pipe: std::sync::OnceLock::new(),
        }))
    }

    /// The backend of a native child process, which executes its own children and keeps
    /// its work in its run's `work_dir`.
    fn for_child(runtime: tokio::runtime::Handle, exe: PathBuf, work_dir: PathBuf) -> Self {
        raise_open_files_limit();
        crate::output::share_prefixed_writes(&work_dir.join(OUTPUT_LOCK));
        Self::with(NativeHost {
            exe,
            work_dir,
            owns_work_dir: false,
            next_run: AtomicU64::new(1),
            fork_server: None,
            runtime,
            parent_pipe: std::sync::OnceLock::new(),
        })
    }

    fn with(host: NativeHost) -> Self {
        NativeBackend {
            host: Arc::new(host),
        }
    }
}

impl Backend for NativeBackend {
    fn new_run(&self, config: &Config) -> Result<(Box<dyn BackendRun>, Link), Error> {
        let n = self.host.next_run.fetch_add(1, Ordering::Relaxed);
        let path = self.host.work_dir.join(format!("run-{n}"));
        let dir = RunDir::create(path.clone(), config.output == OutputMode::Capture)
            .map_err(|io| Error::WriteFile { path, io })?;
        // The run's sync objects live here and are served to its native processes.
        let registry = Registry::new(config.limits.clone());
        let slots = config
            .limits
            .objects
            .clamp(1, u64::from(crate::sync::word::Arena::MAX_SLOTS)) as u32;
        match crate::sync::word::Arena::create(&dir.path.join(crate::sync::ARENA_FILE), slots) {
            Ok(arena) => registry.set_arena(arena),
            // The locks' state stays in this host: every call of a native process goes
            // to its server.
            Err(e) => tracing::warn!("cannot make the run's lock arena: {e}"),
        }
        let socket = dir.sync_socket();
        let listener = {
            let _context = self.host.runtime.enter();
            tokio::net::UnixListener::bind(&socket).map_err(|io| Error::WriteFile {
                path: socket.clone(),
                io,
            })?
        };
        let server = self
            .host
            .runtime
            .spawn(crate::sync::remote::serve(listener, registry.clone()));
        let run = NativeRun::new(self.host.clone(), dir, Some(server.abort_handle()));
        Ok((Box::new(run), Link::Here(registry)))
    }

    fn main_pid(&self) -> u64 {
        u64::from(std::process::id())
    }
}

impl Drop for NativeHost {
    fn drop(&mut self) {
        if self.owns_work_dir {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Raises this OS process's soft limit of open descriptors to its hard limit, as servers
/// that hold a descriptor or two per client do: every live native child holds some of its
/// parent's (its parent pipe, and its spare's sockets), and the usual soft limit of 1,024
/// would refuse starts long before the `processes` limit. Where it cannot be raised, the
/// limit stays as it was.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Checks that `exe` is a wasmproc binary of this very version, which runs with the
/// embedder's hooks if `hooked`.
fn probe(exe: &Path, hooked: bool) -> Result<(), Error> {
    let expected = probe_reply(hooked);
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
    if reply.trim_end() == probe_reply(!hooked) {
        return Err(bad(if hooked {
            "the host has hooks (Config::hooks), and this executable runs native children \
             without them: name an executable whose main calls \
             wasmproc::native_child_main_with(hooks) as Config::native_exe"
                .to_string()
        } else {
            "this executable runs native children with an embedder's hooks, and the host has \
             none (Config::hooks)"
                .to_string()
        }));
    }
    if reply.trim_end() != expected {
        return Err(bad(format!(
            "it is not wasmproc {} speaking protocol {PROTOCOL} (asked `{CHILD_SUBCOMMAND} \
             --probe`, expected \"{expected}\")",
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(())
}

/// What `<exe> __child --probe` prints: with `hooked` when its native children run with
/// an embedder's hooks.
fn probe_reply(hooked: bool) -> String {
    format!(
        "{PROBE_REPLY} {} protocol {PROTOCOL}{}",
        env!("CARGO_PKG_VERSION"),
        if hooked { " hooks" } else { "" }
    )
}

/// Where hosts keep their work directories (the compiled programs their native children
/// map, the slot lock files, captured output): `$TMPDIR` when it is set, otherwise
/// `/dev/shm` when there is one to write to with room to spare (memory: a file is created
/// there far faster than on a disk's journal, and every native start creates some;
/// containers often give it only 64 MiB), otherwise the system's temporary directory.
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

/// A new work directory for a host (several hosts may live in one OS process), under
/// [`work_root`]: `wasmproc-<pid>-<random>`, made by this call (a name that exists already
/// is not taken) and private to its owner. The root itself is never created.
fn make_work_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::PermissionsExt;
    let root = work_root();
    let refuse = |why: String| Error::WorkDir {
        root: root.clone(),
        why,
    };
    if !root.is_dir() {
        return Err(refuse(match std::env::var_os("TMPDIR") {
            Some(_) => {
                "it is $TMPDIR, and it is not a directory (create it, or unset TMPDIR)".to_string()
            }
            None => "it is not a directory".to_string(),
        }));
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("wasmproc-{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(WORK_DIR_MODE))
        .tempdir_in(&root)
        .map_err(|io| refuse(io.to_string()))?;
    // Removed when the host is dropped (`NativeHost::owns_work_dir`), or by a later host
    // once this OS process is gone (`remove_stale_work_dirs`).
    Ok(dir.keep())
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
