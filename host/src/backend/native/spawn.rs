//! Starting a native child: its description, its descriptors, and the start itself,
//! through the fork server or by executing this executable.

use super::fork_server::{ChildFds, StartError};
use super::run::RunDir;
use super::spec::{AllowedProgram, ChildSpec};
use super::{CHILD_SUBCOMMAND, NativeHost};
use crate::backend::{Control, Elsewhere, Ended, SpawnError, SpawnRequest, Spawned};
use crate::config::BackendKind;
use crate::error::{ErrorKind, ProcessError};
use crate::exit::{ExitStatus, LimitHit, Signal};
use crate::program::{Program, Programs};
use futures::future::BoxFuture;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// A start that failed for `what`.
pub(super) fn failure(what: &str, e: impl std::fmt::Display) -> ProcessError {
    ProcessError::host_failure(format!("cannot start a native process: {what}: {e}"))
}

/// A start that failed for `what` with the OS error `e`: running out of descriptors is the
/// `limit-exceeded` of the OS limit that was hit, any other error a [`failure`].
pub(super) fn os_failure(what: &str, e: impl Into<std::io::Error>) -> ProcessError {
    let e = e.into();
    match e.raw_os_error() {
        Some(libc::EMFILE) => {
            let shown = soft_limit(rustix::process::Resource::Nofile);
            ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "limit nofile = {shown} reached: no descriptor is left to start another \
                     native process (RLIMIT_NOFILE, `ulimit -n`)"
                ),
            )
        }
        Some(libc::ENFILE) => ProcessError::new(
            ErrorKind::LimitExceeded,
            "the system's limit of open files (fs.file-max) was reached: the host has no \
             descriptor left to start another native process",
        ),
        Some(libc::EAGAIN) if what == "fork" => {
            let shown = soft_limit(rustix::process::Resource::Nproc);
            ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "cannot fork another native process: the user's limit nproc = {shown} \
                     (RLIMIT_NPROC, `ulimit -u`) or the system's process limit was reached"
                ),
            )
        }
        _ => failure(what, e),
    }
}

/// This OS process's soft limit of `resource`, as a refusal names it.
fn soft_limit(resource: rustix::process::Resource) -> String {
    rustix::process::getrlimit(resource)
        .current
        .map_or("unlimited".to_string(), |n| n.to_string())
}

/// What a child gets besides its description: the read end of its parent pipe, its
/// process slot, and its captured output's files.
struct Inherited {
    parent_read: OwnedFd,
    slot: OwnedFd,
    files: Option<(File, File)>,
}

/// Starts the child `request` describes in an OS process of its own.
pub(super) fn spawn(
    host: &NativeHost,
    dir: &Arc<RunDir>,
    request: &SpawnRequest<'_>,
) -> Result<Spawned, SpawnError> {
    // A copy of the read end of this OS process's parent pipe, for this start only.
    let parent_read = rustix::io::fcntl_dupfd_cloexec(&host.parent_pipe()?.0, 3)
        .map_err(|e| os_failure("pipe", e))?;
    let (slot, slot_number) =
        dir.take_slot(request.config.limits.processes_for(BackendKind::Native))?;
    let inherited = Inherited {
        files: capture_files(request)?,
        parent_read,
        slot,
    };
    // Taken once: under a local link, each call sets the objects aside anew.
    let token = request.link.token(request.shares);
    let spec = describe(host, dir, request, &inherited, token)?.encode()?;
    let (pid, ended) = start(host, dir, spec, inherited)?;
    let rpid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| failure("pid", pid))?;
    let dir = dir.clone();
    let ended: BoxFuture<'static, Ended> = Box::pin(async move {
        let status = ended.await;
        // Its slot is offered to the next start.
        dir.slot_freed(slot_number);
        // Which limit ended it, if one did (the child recorded it before it exited).
        let limit = (status == ExitStatus::Code(crate::config::LIMIT_EXIT_CODE))
            .then(|| {
                let path = super::limit_record(&dir.path, pid);
                let record = std::fs::read_to_string(&path).ok();
                let _ = std::fs::remove_file(&path);
                record.as_deref().and_then(LimitHit::parse)
            })
            .flatten();
        // The value its target returned, if it left one.
        let path = super::result_record(&dir.path, pid);
        let result = (status == ExitStatus::SUCCESS)
            .then(|| std::fs::read(&path).ok())
            .flatten();
        let _ = std::fs::remove_file(&path);
        Ended {
            status,
            limit,
            result,
        }
    });
    Ok(Spawned::Elsewhere(Elsewhere {
        pid,
        control: Box::new(NativeControl { pid: rpid }),
        ended,
        token,
    }))
}

/// The child's description; `sync_token` names the objects its parent shares with it.
fn describe(
    host: &NativeHost,
    dir: &RunDir,
    request: &SpawnRequest<'_>,
    inherited: &Inherited,
    sync_token: u64,
) -> Result<ChildSpec, ProcessError> {
    let config = request.config;
    Ok(ChildSpec {
        artifact: artifact(host, request.program)?,
        display_name: request.program.display_name().to_string(),
        targets: request.program.targets().to_vec(),
        target: request.target.to_string(),
        args: request.args.to_vec(),
        name: request.name.to_string(),
        daemon: request.daemon,
        identity: request.identity.to_vec(),
        parent_name: request.parent.name.to_string(),
        parent_pid: request.parent.pid,
        parent_daemon: request.parent.daemon,
        authkey: *request.authkey,
        output: request.output.mode(),
        limits: request.limits.clone(),
        grants: request.grants.clone(),
        engine_memory: config.limits.memory,
        epoch_tick_ms: config.epoch_tick_ms,
        run_dir: dir.path.clone(),
        capture_dir: dir.capture_dir.clone(),
        lifeline_fd: dir.lifeline_read.as_raw_fd(),
        parent_fd: inherited.parent_read.as_raw_fd(),
        slot_fd: inherited.slot.as_raw_fd(),
        exe: host.exe.clone(),
        sync_token,
        programs: allowed_programs(host, request.programs)?,
    })
}

/// The files the child's captured stdout and stderr go to, if its output is captured.
fn capture_files(request: &SpawnRequest<'_>) -> Result<Option<(File, File)>, ProcessError> {
    let Some((out, err)) = request.output.captured().and_then(|c| c.files()) else {
        return Ok(None);
    };
    let open = |p: &Path| std::fs::OpenOptions::new().append(true).open(p);
    Ok(Some((
        open(&out).map_err(|e| os_failure("capture file", e))?,
        open(&err).map_err(|e| os_failure("capture file", e))?,
    )))
}

/// The compiled `program` as a file native children map, written once per host.
fn artifact(host: &NativeHost, program: &Program) -> Result<PathBuf, ProcessError> {
    let inner = program.inner();
    if let Some(path) = inner.artifact.get() {
        return Ok(path.clone());
    }
    let bytes = inner
        .component
        .serialize()
        .map_err(|e| ProcessError::host_failure(format!("cannot serialise the program: {e:#}")))?;
    let path = host
        .work_dir
        .join(format!("program-{}.cwasm", rand::random::<u64>()));
    std::fs::write(&path, bytes)
        .map_err(|e| ProcessError::host_failure(format!("cannot write {}: {e}", path.display())))?;
    Ok(inner.artifact.get_or_init(|| path).clone())
}

/// The programs the host allows, compiled, for a child's own children.
fn allowed_programs(
    host: &NativeHost,
    programs: &Programs,
) -> Result<Vec<AllowedProgram>, ProcessError> {
    programs
        .names()
        .into_iter()
        .map(|name| {
            let program = programs.get(&name)?;
            Ok(AllowedProgram {
                artifact: artifact(host, &program)?,
                display_name: program.display_name().to_string(),
                targets: program.targets().to_vec(),
                name,
            })
        })
        .collect()
}

/// Starts the child of `spec`: through the fork server when the host has one that takes
/// the request, by executing this executable otherwise. Returns its pid and its end.
fn start(
    host: &NativeHost,
    dir: &RunDir,
    spec: Vec<u8>,
    inherited: Inherited,
) -> Result<(u32, BoxFuture<'static, ExitStatus>), ProcessError> {
    let mut fork_server_failed = None;
    if let Some(server) = &host.fork_server {
        let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
        let files = inherited.files.as_ref();
        let fds = ChildFds {
            stdout: files.map_or(stdout.as_fd(), |(out, _)| out.as_fd()),
            stderr: files.map_or(stderr.as_fd(), |(_, err)| err.as_fd()),
            parent: inherited.parent_read.as_fd(),
            slot: inherited.slot.as_fd(),
            lifeline: dir.lifeline_read.as_fd(),
        };
        match server.start(&spec, &fds) {
            Ok((pid, ended)) => {
                let ended = async move { ended.await.unwrap_or(ExitStatus::FAILURE) };
                return Ok((pid, Box::pin(ended)));
            }
            // No fork server took the request: the child is executed below.
            Err(StartError::NotSent(why)) => fork_server_failed = Some(why),
            Err(StartError::Lost(why)) => return Err(failure("fork server", why)),
            Err(StartError::Fork(e)) => return Err(os_failure("fork", e)),
        }
    }
    execute(host, dir, spec, inherited, fork_server_failed)
}

/// Starts the child of `spec` by executing `<exe> __child`, which reads `spec` on its
/// stdin. `fork_server_failed` says why the fork server did not start it, if it did not.
fn execute(
    host: &NativeHost,
    dir: &RunDir,
    spec: Vec<u8>,
    inherited: Inherited,
    fork_server_failed: Option<String>,
) -> Result<(u32, BoxFuture<'static, ExitStatus>), ProcessError> {
    let mut command = tokio::process::Command::new(&host.exe);
    command.arg(CHILD_SUBCOMMAND).stdin(Stdio::piped());
    match inherited.files {
        Some((out, err)) => {
            command.stdout(out).stderr(err);
        }
        None => {
            command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        }
    }
    let keep = [
        dir.lifeline_read.as_raw_fd(),
        inherited.parent_read.as_raw_fd(),
        inherited.slot.as_raw_fd(),
    ];
    // SAFETY: the closure runs in the forked child before exec and calls only fcntl,
    // which is async-signal-safe; it clears close-on-exec on exactly the two pipe ends and
    // the slot lock this child must inherit (every other descriptor of the host is
    // close-on-exec).
    unsafe {
        command.pre_exec(move || {
            for fd in keep {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            }
            Ok(())
        });
    }
    // Library callers start processes from outside the scheduler; tokio's child handling
    // needs its context.
    let _context = host.runtime.enter();
    let mut child = command.spawn().map_err(|e| {
        let what = format!("cannot run {}", host.exe.display());
        match &fork_server_failed {
            Some(why) => os_failure(&format!("{why}; {what}"), e),
            None => os_failure(&what, e),
        }
    })?;
    // The child holds the slot's lock and the parent pipe's read end now; this process's
    // copies go.
    drop((inherited.parent_read, inherited.slot));
    let pid = child.id().ok_or_else(|| failure("child", "no pid"))?;
    let mut stdin = child.stdin.take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    host.runtime.spawn(async move {
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
        let _ = tx.send(status);
    });
    Ok((
        pid,
        Box::pin(async move { rx.await.unwrap_or(ExitStatus::FAILURE) }),
    ))
}

/// Signals a native child process.
struct NativeControl {
    pid: rustix::process::Pid,
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

/// How an OS process ended, as a process status.
pub(crate) fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitStatus::Code((code & 0xff) as u8),
        (None, Some(sig)) => ExitStatus::Signaled(Signal::from_number(sig)),
        (None, None) => ExitStatus::FAILURE,
    }
}
