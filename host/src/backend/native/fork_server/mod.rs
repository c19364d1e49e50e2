//! The native backend's fork server (its "zygote", as CPython's `forkserver`): the run's
//! root host starts it once, as its native executable run as `__child --zygote`, and from
//! then on asks it for every child process instead of executing a fresh binary. Executing
//! the host binary costs milliseconds (mapping and relocating it, starting its runtime); a
//! fork of the already-running, single-threaded fork server costs a fraction of that.
//!
//! Two socket pairs link the host and its fork server:
//! - *requests* (the fork server's stdin): the host sends a child's description — the same
//!   bytes an executed child reads on its stdin — with five descriptors attached
//!   (`SCM_RIGHTS`: the child's stdout, stderr, parent-pipe read end, process-slot lock and
//!   the run's lifeline), and reads back the child's pid (or the `fork` error);
//! - *reports* (the fork server's stdout): 12-byte messages, kind, pid and wait status: a child
//!   ended ([`ENDED`]; the fork server reaps it), a spare is ready ([`SPARE`], with the spare's
//!   request socket and pidfd attached), a spare ended ([`SPARE_ENDED`]). One host thread
//!   reads them and hands each end to the task waiting for that pid.
//!
//! A child that runs on a spare tells its end itself: it writes its exit code on its
//! request socket just before `_exit`, and the host thread that reads the reports also
//! watches that child's pidfd; once the child has exited, the code is its end, and the
//! fork server's report of it is dropped (see [`Reports`]).
//!
//! *Spares*: once it has its engine (with the first request), the fork server keeps [`SPARES`]
//! processes forked ahead of their requests. A spare closes what it inherited, makes its
//! scheduler and instantiates each program it has once (running none of its code), then
//! waits on its own request socket, which the host holds. The host hands a request straight
//! to a spare (no reply: it knows the pid) and asks the fork server only when it has none, or
//! when the spare it picked has exited (its socket is closed). The spare copies the request
//! to the fork server on a *note* socket and becomes the child; the fork server loads that program if
//! it had not, and forks new spares [`SPARE_DELAY`] later. A start+join so crosses from the
//! host to its child directly, and the fork, the scheduler and the instantiation's page
//! faults happen while the previous child runs. A spare killed by someone else just as a
//! start hands it its child makes that child end killed.
//!
//! A forked child closes every descriptor but its standard streams (stdin `/dev/null`,
//! stdout and stderr as sent) and the three it inherits as an executed child would, then
//! runs exactly the code of an executed child ([`super::child`]'s `run_spec`); its
//! scheduler, engine and threads are made after the fork.
//!
//! Lifetimes: the fork server stops taking requests when its request socket closes (the host
//! dropped its backend, or died: even a SIGKILLed host closes its sockets), reaps its
//! remaining children (they end with their run's lifeline) and spares (they exit when the
//! host's copies of their sockets close) and exits; it is also killed when the host thread
//! that started it ends (`PR_SET_PDEATHSIG`), which happens only when the host process
//! dies: that thread lives as long as the fork server. A spare dies with the fork server the same
//! way. The fork server leads a process group of its own, which its spares, its children and
//! every process those execute belong to: when the host dies (the parent-death signal, or its
//! request socket closing with another parent now), it kills the whole group with one signal,
//! however many processes the run had. When the fork server dies unexpectedly, its children still running are killed and
//! reported killed, and the next start makes a new fork server.

mod server;

pub(crate) use server::server_main;
use server::{read_exact, wait_in, watch_in};

use crate::exit::{ExitStatus, Signal};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The argument after `__child` that makes the executable a fork server.
pub(crate) const FORK_SERVER_FLAG: &str = "--zygote";

/// The largest request handed to a spare (below the default buffer of a Unix socket,
/// `net.core.wmem_default`, 208 KiB).
const SPARE_REQUEST_MAX: usize = 64 << 10;

/// How many descriptors travel with each request.
pub(super) const FDS: usize = 5;

/// The descriptors a child gets, in the order they travel.
pub(crate) struct ChildFds<'a> {
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub parent: BorrowedFd<'a>,
    pub slot: BorrowedFd<'a>,
    pub lifeline: BorrowedFd<'a>,
}

/// Why a start through the fork server failed.
pub(crate) enum StartError {
    /// The request never reached a fork server: nothing was started, the caller may start the
    /// child another way.
    NotSent(String),
    /// The fork server took the request but gave no answer (it died): the child may or may not
    /// exist, so it must not be started again.
    Lost(String),
    /// The fork server could not fork.
    Fork(std::io::Error),
}

/// The host side: starts the fork server on first use, and a new one after it died.
pub(crate) struct ForkServer {
    exe: PathBuf,
    running: Mutex<Option<Running>>,
    /// Fork servers that failed to start, in a row; after [`MAX_START_FAILURES`], none is tried.
    start_failures: std::sync::atomic::AtomicU32,
}

/// After this many fork servers failed to start in a row, children are executed instead.
const MAX_START_FAILURES: u32 = 3;

/// One running fork server.
struct Running {
    requests: UnixStream,
    reports: Arc<Reports>,
    /// Disconnects when the fork server has exited and been reaped.
    gone: std::sync::mpsc::Receiver<()>,
}

/// The ends of the fork server's children, as reported, matched with the tasks that wait.
///
/// A child that ran on a spare tells its own end: it writes its exit code (one byte) on
/// its request socket just before `_exit`, and this host's reader thread watches its
/// pidfd (which the fork server passed with the spare). Once the pidfd is readable (the process
/// has exited: its memory is freed and its descriptors are closed), the code waiting on
/// the socket is its end. The fork server's report of the same end, which comes after the
/// fork server was woken, reaped it and wrote, is then dropped (it comes late: the fork
/// server is often forking the next spare then). A child killed by a signal
/// writes nothing, and its end is the fork server's report. (A child killed between its write
/// and its `_exit` is taken to have exited with the code it wrote.)
struct Reports {
    inner: Mutex<ReportsInner>,
    /// The reader thread's epoll set: the report socket, and the pidfds of the children
    /// that run on spares (keyed [`TOLD`] | pid).
    epoll: OwnedFd,
}

struct ReportsInner {
    /// The fork server is gone: no report will come any more.
    dead: bool,
    pids: HashMap<i32, Entry>,
    /// The spares the fork server made ready, oldest first.
    spares: std::collections::VecDeque<Spare>,
    /// The children running on spares, by pid: their request socket and pidfd.
    running: HashMap<i32, (UnixStream, OwnedFd)>,
}

/// A spare the fork server made ready: its pid, request socket and pidfd.
struct Spare {
    pid: i32,
    socket: UnixStream,
    pidfd: OwnedFd,
}

enum Entry {
    Waiting(oneshot::Sender<ExitStatus>),
    /// The end was reported before the host had registered the pid.
    Ended(ExitStatus),
    /// The child told its end itself; the fork server's report of it is dropped.
    Told,
}

/// The key of the report socket in the reader's epoll set.
const REPORTS_KEY: u64 = 1 << 40;
/// The key bit of a pidfd in the reader's epoll set (below it: the pid).
const TOLD: u64 = 1 << 41;

impl ForkServer {
    pub fn new(exe: PathBuf) -> Self {
        ForkServer {
            exe,
            running: Mutex::new(None),
            start_failures: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Starts a child described by `spec` (the bytes an executed child reads on stdin) with
    /// the descriptors `fds`; returns its pid and where its end will be reported.
    pub fn start(
        &self,
        spec: &[u8],
        fds: &ChildFds<'_>,
    ) -> Result<(u32, oneshot::Receiver<ExitStatus>), StartError> {
        let mut guard = crate::lock(&self.running);
        let alive = guard
            .as_ref()
            .is_some_and(|l| !crate::lock(&l.reports.inner).dead);
        if !alive {
            use std::sync::atomic::Ordering::Relaxed;
            *guard = None;
            let failures = self.start_failures.load(Relaxed);
            if failures >= MAX_START_FAILURES {
                return Err(StartError::NotSent(format!(
                    "the fork server failed to start {failures} times"
                )));
            }
            let running = Running::start(&self.exe).map_err(|e| {
                self.start_failures.fetch_add(1, Relaxed);
                StartError::NotSent(format!(
                    "cannot start the fork server {} {} {FORK_SERVER_FLAG}: {e}",
                    self.exe.display(),
                    super::CHILD_SUBCOMMAND,
                ))
            })?;
            self.start_failures.store(0, Relaxed);
            *guard = Some(running);
        }
        let Some(link) = guard.as_mut() else {
            return Err(StartError::NotSent("no fork server".into()));
        };
        let reports = link.reports.clone();
        if let Some((pid, ended)) = reports.start_on_spare(spec, fds) {
            return Ok((pid.unsigned_abs(), ended));
        }
        let pid = match link.request(spec, fds) {
            Ok(pid) => pid,
            Err(e) => {
                if !matches!(e, StartError::Fork(_)) {
                    // Whatever happened to it, this fork server is not asked again.
                    *guard = None;
                }
                return Err(e);
            }
        };
        drop(guard);
        let (tx, rx) = oneshot::channel();
        reports.register(pid, tx);
        Ok((pid.unsigned_abs(), rx))
    }
}

impl Drop for ForkServer {
    /// Closes the fork server's request socket and waits a little for it to exit, so that a
    /// host that ends leaves no fork server behind. Its children have normally all ended (a
    /// host ends its processes first); if not, the fork server reaps them before it exits.
    fn drop(&mut self) {
        if let Some(link) = crate::lock(&self.running).take() {
            let Running {
                requests,
                gone,
                reports,
            } = link;
            // The spares not taken exit when their sockets close; the fork server waits for them.
            crate::lock(&reports.inner).spares.clear();
            drop(requests);
            let _ = gone.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}

impl Running {
    /// Starts a fork server, and the host thread that reads its reports (and started it, so
    /// that the fork server's parent-death signal fires only when the host process dies).
    fn start(exe: &Path) -> std::io::Result<Running> {
        let (requests, server_requests) = UnixStream::pair()?;
        let (reports_in, server_reports) = UnixStream::pair()?;
        let reports = Arc::new(Reports {
            inner: Mutex::new(ReportsInner {
                dead: false,
                pids: HashMap::new(),
                spares: std::collections::VecDeque::new(),
                running: HashMap::new(),
            }),
            epoll: rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC)?,
        });
        let (started, is_started) = std::sync::mpsc::channel();
        let (gone_tx, gone) = std::sync::mpsc::channel::<()>();
        let exe = exe.to_path_buf();
        let thread_reports = reports.clone();
        std::thread::Builder::new()
            .name("wasmproc-fork server".into())
            .spawn(move || {
                let _gone = gone_tx;
                let child = Command::new(&exe)
                    .args([
                        super::CHILD_SUBCOMMAND,
                        FORK_SERVER_FLAG,
                        &std::process::id().to_string(),
                    ])
                    .stdin(Stdio::from(OwnedFd::from(server_requests)))
                    .stdout(Stdio::from(OwnedFd::from(server_reports)))
                    .stderr(Stdio::inherit())
                    // A process group of its own, which every native process of this
                    // host's runs joins (see `server::kill_group`).
                    .process_group(0)
                    .spawn();
                let mut child = match child {
                    Ok(child) => {
                        let _ = started.send(Ok(()));
                        child
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                thread_reports.read_all(reports_in);
                // End-of-file: the fork server has exited (or is exiting); reap it.
                let _ = child.kill();
                let _ = child.wait();
            })?;
        is_started
            .recv()
            .map_err(|_| std::io::Error::other("the fork server's thread ended"))??;
        let mut ready = [0u8; 8];
        (&requests).read_exact(&mut ready)?;
        if ready != [0; 8] {
            return Err(std::io::Error::other(
                "the fork server said it was not ready",
            ));
        }
        Ok(Running {
            requests,
            reports,
            gone,
        })
    }

    /// Sends one request and reads the pid of the child the fork server forked.
    fn request(&mut self, spec: &[u8], fds: &ChildFds<'_>) -> Result<i32, StartError> {
        let not_sent = |e: std::io::Error| StartError::NotSent(format!("fork server: {e}"));
        let sent = send_request(&self.requests, spec, fds, false).map_err(not_sent)?;
        let lost = |e: std::io::Error| StartError::Lost(format!("the fork server died: {e}"));
        self.requests.write_all(&spec[sent..]).map_err(lost)?;
        let mut reply = [0u8; 8];
        self.requests.read_exact(&mut reply).map_err(lost)?;
        match i64::from_le_bytes(reply) {
            pid if pid > 0 => i32::try_from(pid).map_err(|e| lost(std::io::Error::other(e))),
            errno => Err(StartError::Fork(std::io::Error::from_raw_os_error(
                i32::try_from(-errno).unwrap_or(0),
            ))),
        }
    }
}

/// Sends a request: the first bytes of `spec` (at least one) with the descriptors `fds`;
/// returns how many bytes went. `whole`: all of `spec` in this one call, without waiting
/// (a spare's socket is empty), or an error.
fn send_request(
    socket: &UnixStream,
    spec: &[u8],
    fds: &ChildFds<'_>,
    whole: bool,
) -> std::io::Result<usize> {
    let borrowed = [fds.stdout, fds.stderr, fds.parent, fds.slot, fds.lifeline];
    let mut flags = rustix::net::SendFlags::NOSIGNAL;
    if whole {
        flags |= rustix::net::SendFlags::DONTWAIT;
    }
    let sent = send_with_fds(socket.as_fd(), spec, &borrowed, flags)?;
    if whole && sent < spec.len() {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    Ok(sent)
}

/// Sends the first bytes of `bytes` (at least one) with the descriptors `fds` (at most
/// [`FDS`]) attached; returns how many bytes went.
fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
    flags: rustix::net::SendFlags,
) -> std::io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other(
            "too many descriptors for one message",
        ));
    }
    loop {
        match rustix::net::sendmsg(socket, &[IoSlice::new(bytes)], &mut control, flags) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives into `buf`, waiting for all of it unless the peer closes or a message with
/// descriptors ends first; returns how many bytes came (0: end-of-file) and the
/// descriptors that came with them (close-on-exec).
fn recv_with_fds(socket: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(
            socket,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::WAITALL,
        ) {
            Ok(msg) => break msg.bytes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    Ok((got, fds))
}

/// What the fork server writes on its report socket: 12 bytes, kind, pid and wait status.
/// A child ended.
pub(super) const ENDED: u32 = 0;
/// A spare is ready: its request socket comes with the message (no status).
pub(super) const SPARE: u32 = 1;
/// A spare ended: the child it ran if it was handed a request, else nothing to report.
pub(super) const SPARE_ENDED: u32 = 2;

impl Reports {
    /// Hands the request to the spare the fork server made ready, if there is one; returns its
    /// pid and where its end will be reported.
    fn start_on_spare(
        &self,
        spec: &[u8],
        fds: &ChildFds<'_>,
    ) -> Option<(i32, oneshot::Receiver<ExitStatus>)> {
        // A spare is handed its request in one non-blocking send: one larger than a
        // socket's buffer (large start arguments) would reach it cut short. Such requests
        // go to the fork server, which reads them whole.
        if spec.len() > SPARE_REQUEST_MAX {
            return None;
        }
        let mut inner = crate::lock(&self.inner);
        let Spare { pid, socket, pidfd } = inner.spares.pop_front()?;
        // Registered before it is sent: a spare's end is reported only to a waiter.
        let (tx, rx) = oneshot::channel();
        inner.pids.insert(pid, Entry::Waiting(tx));
        drop(inner);
        if send_request(&socket, spec, fds, true).is_err() {
            // It died (its end, reported, goes to the dropped receiver): fork one instead.
            return None;
        }
        // Its end is watched from now on (a pidfd already readable fires at once).
        let key = TOLD | u64::try_from(pid).unwrap_or(0);
        let mut inner = crate::lock(&self.inner);
        let watched = watch_in(&self.epoll, &pidfd, key);
        // Unwatched, its end comes with the fork server's report.
        if watched.is_ok() {
            inner.running.insert(pid, (socket, pidfd));
        }
        Some((pid, rx))
    }

    /// The child `pid`, which ran on a spare, has exited: its end is the exit code it
    /// wrote on its request socket, if it wrote one (else the fork server's report tells it).
    fn exited(&self, pid: i32) {
        let mut inner = crate::lock(&self.inner);
        let Some((socket, pidfd)) = inner.running.remove(&pid) else {
            return;
        };
        let _ = rustix::event::epoll::delete(&self.epoll, &pidfd);
        let mut code = [0u8; 1];
        let told = matches!(
            rustix::net::recv(&socket, &mut code, rustix::net::RecvFlags::DONTWAIT),
            Ok((1, _))
        );
        if !told {
            return;
        }
        match inner.pids.remove(&pid) {
            Some(Entry::Waiting(tx)) => {
                inner.pids.insert(pid, Entry::Told);
                drop(inner);
                let _ = tx.send(ExitStatus::Code(code[0]));
            }
            // Its end was reported already.
            Some(entry) => {
                inner.pids.insert(pid, entry);
            }
            None => {}
        }
    }

    /// Hands the end of `pid` to `tx`, now if it was already reported.
    fn register(&self, pid: i32, tx: oneshot::Sender<ExitStatus>) {
        let mut inner = crate::lock(&self.inner);
        match inner.pids.remove(&pid) {
            Some(Entry::Ended(status)) => {
                let _ = tx.send(status);
            }
            _ if inner.dead => {
                drop(inner);
                let _ = tx.send(orphaned(pid));
            }
            _ => {
                inner.pids.insert(pid, Entry::Waiting(tx));
            }
        }
    }

    /// Reads the fork server's reports until it is gone (and takes the ends the children on
    /// spares tell), then ends every child it left.
    fn read_all(&self, reports: UnixStream) {
        let watched = watch_in(&self.epoll, &reports, REPORTS_KEY);
        let mut events = Vec::with_capacity(16);
        let mut reading = watched.is_ok();
        while reading {
            if wait_in(&self.epoll, &mut events).is_err() {
                break;
            }
            // The told ends first: the fork server's reports of the same ends may be among
            // these events.
            let mut report = false;
            for event in events.drain(..) {
                match event.data.u64() {
                    REPORTS_KEY => report = true,
                    key => self.exited(i32::try_from(key & !TOLD).unwrap_or(0)),
                }
            }
            if report {
                reading = self.take_report(&reports);
            }
        }
        self.server_gone();
    }

    /// Takes one report from the fork server; `false` when it is gone.
    fn take_report(&self, reports: &UnixStream) -> bool {
        let Ok((kind, pid, raw, fds)) = read_report(reports) else {
            return false;
        };
        if kind == SPARE {
            if let Ok([socket, pidfd]) = <[OwnedFd; 2]>::try_from(fds) {
                let spare = Spare {
                    pid,
                    socket: UnixStream::from(socket),
                    pidfd,
                };
                crate::lock(&self.inner).spares.push_back(spare);
            }
            return true;
        }
        let status = {
            use std::os::unix::process::ExitStatusExt;
            super::spawn::exit_status(std::process::ExitStatus::from_raw(raw))
        };
        let mut inner = crate::lock(&self.inner);
        // No longer watched: it has been reaped.
        if let Some((_, pidfd)) = inner.running.remove(&pid) {
            let _ = rustix::event::epoll::delete(&self.epoll, &pidfd);
        }
        match inner.pids.remove(&pid) {
            Some(Entry::Waiting(tx)) => {
                drop(inner);
                let _ = tx.send(status);
            }
            // Told by the child already.
            Some(Entry::Told) => {}
            _ if kind == SPARE_ENDED => {
                // A spare that never ran a child.
                inner.spares.retain(|s| s.pid != pid);
            }
            _ => {
                inner.pids.insert(pid, Entry::Ended(status));
            }
        }
        true
    }

    /// The fork server is gone: ends already reported stay for their registration; the others
    /// never will be.
    fn server_gone(&self) {
        let pending: Vec<(i32, Entry)> = {
            let mut inner = crate::lock(&self.inner);
            inner.dead = true;
            inner.spares.clear();
            inner.running.clear();
            let waiting: Vec<i32> = inner
                .pids
                .iter()
                .filter(|(_, e)| matches!(e, Entry::Waiting(_)))
                .map(|(pid, _)| *pid)
                .collect();
            waiting
                .into_iter()
                .filter_map(|pid| inner.pids.remove_entry(&pid))
                .collect()
        };
        for (pid, entry) in pending {
            if let Entry::Waiting(tx) = entry {
                let _ = tx.send(orphaned(pid));
            }
        }
    }
}

/// Reads one message of the fork server's report socket: kind, pid, status, and the descriptor
/// that came with it.
fn read_report(socket: &UnixStream) -> std::io::Result<(u32, i32, i32, Vec<OwnedFd>)> {
    let mut message = [0u8; 12];
    let (got, fds) = recv_with_fds(socket.as_fd(), &mut message)?;
    if got == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if got < message.len() {
        read_exact(socket.as_fd(), &mut message[got..])?;
    }
    let word = |i: usize| [message[i], message[i + 1], message[i + 2], message[i + 3]];
    Ok((
        u32::from_le_bytes(word(0)),
        i32::from_le_bytes(word(4)),
        i32::from_le_bytes(word(8)),
        fds,
    ))
}

/// Ends a child whose fork server died (nobody can report its end any more): it is killed.
fn orphaned(pid: i32) -> ExitStatus {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    ExitStatus::Signaled(Signal::Kill)
}
