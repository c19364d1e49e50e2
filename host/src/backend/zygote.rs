//! The native backend's fork server (its "zygote", as CPython's `forkserver`): the run's
//! root host starts it once, as its native executable run as `__child --zygote`, and from
//! then on asks it for every child process instead of executing a fresh binary. Executing
//! the host binary costs milliseconds (mapping and relocating it, starting its runtime); a
//! fork of the already-running, single-threaded zygote costs a fraction of that.
//!
//! Two socket pairs link the host and its zygote:
//! - *requests* (the zygote's stdin): the host sends a child's description — the same
//!   bytes an executed child reads on its stdin — with five descriptors attached
//!   (`SCM_RIGHTS`: the child's stdout, stderr, parent-pipe read end, process-slot lock and
//!   the run's lifeline), and reads back the child's pid (or the `fork` error);
//! - *reports* (the zygote's stdout): 12-byte messages, kind, pid and wait status: a child
//!   ended ([`ENDED`]; the zygote reaps it), a spare is ready ([`SPARE`], with the spare's
//!   request socket and pidfd attached), a spare ended ([`SPARE_ENDED`]). One host thread
//!   reads them and hands each end to the task waiting for that pid.
//!
//! A child that runs on a spare tells its end itself: it writes its exit code on its
//! request socket just before `_exit`, and the host thread that reads the reports also
//! watches that child's pidfd; once the child has exited, the code is its end, and the
//! zygote's report of it is dropped (see [`Reports`]).
//!
//! *Spares*: once it has its engine (with the first request), the zygote keeps [`SPARES`]
//! processes forked ahead of their requests. A spare closes what it inherited, makes its
//! scheduler and instantiates each program it has once (running none of its code), then
//! waits on its own request socket, which the host holds. The host hands a request straight
//! to a spare (no reply: it knows the pid) and asks the zygote only when it has none, or
//! when the spare it picked has exited (its socket is closed). The spare copies the request
//! to the zygote on a *note* socket and becomes the child; the zygote loads that program if
//! it had not, and forks new spares [`SPARE_DELAY`] later. A start+join so crosses from the
//! host to its child directly, and the fork, the scheduler and the instantiation's page
//! faults happen while the previous child runs. A spare killed by someone else just as a
//! start hands it its child makes that child end killed.
//!
//! A forked child closes every descriptor but its standard streams (stdin `/dev/null`,
//! stdout and stderr as sent) and the three it inherits as an executed child would, then
//! runs exactly the code of an executed child ([`super::native`]'s `run_spec`); its
//! scheduler, engine and threads are made after the fork.
//!
//! Lifetimes: the zygote stops taking requests when its request socket closes (the host
//! dropped its backend, or died: even a SIGKILLed host closes its sockets), reaps its
//! remaining children (they end with their run's lifeline) and spares (they exit when the
//! host's copies of their sockets close) and exits; it is also killed when the host thread
//! that started it ends (`PR_SET_PDEATHSIG`), which happens only when the host process
//! dies: that thread lives as long as the zygote. A spare dies with the zygote the same
//! way. When the zygote dies unexpectedly, its children still running are killed and
//! reported killed, and the next start makes a new zygote.

use crate::exit::{ExitStatus, Signal};
use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The argument after `__child` that makes the executable a zygote.
pub(crate) const ZYGOTE_FLAG: &str = "--zygote";

/// How many descriptors travel with each request.
const FDS: usize = 5;

/// The descriptors a child gets, in the order they travel.
pub(crate) struct ChildFds<'a> {
    pub stdout: BorrowedFd<'a>,
    pub stderr: BorrowedFd<'a>,
    pub parent: BorrowedFd<'a>,
    pub slot: BorrowedFd<'a>,
    pub lifeline: BorrowedFd<'a>,
}

/// Why a start through the zygote failed.
pub(crate) enum StartError {
    /// The request never reached a zygote: nothing was started, the caller may start the
    /// child another way.
    NotSent(String),
    /// The zygote took the request but gave no answer (it died): the child may or may not
    /// exist, so it must not be started again.
    Lost(String),
    /// The zygote could not fork.
    Fork(std::io::Error),
}

/// The host side: starts the zygote on first use, and a new one after it died.
pub(crate) struct Zygote {
    exe: PathBuf,
    link: Mutex<Option<Link>>,
    /// Zygotes that failed to start, in a row; after [`MAX_START_FAILURES`], none is tried.
    start_failures: std::sync::atomic::AtomicU32,
}

/// After this many zygotes failed to start in a row, children are executed instead.
const MAX_START_FAILURES: u32 = 3;

/// One running zygote.
struct Link {
    requests: UnixStream,
    reports: Arc<Reports>,
    /// Disconnects when the zygote has exited and been reaped.
    gone: std::sync::mpsc::Receiver<()>,
}

/// The ends of the zygote's children, as reported, matched with the tasks that wait.
///
/// A child that ran on a spare tells its own end: it writes its exit code (one byte) on
/// its request socket just before `_exit`, and this host's reader thread watches its
/// pidfd (which the zygote passed with the spare). Once the pidfd is readable (the process
/// has exited: its memory is freed and its descriptors are closed), the code waiting on
/// the socket is its end. The zygote's report of the same end, which comes after the
/// zygote was woken, reaped it and wrote, is then dropped: in a trace of the bench's
/// start+join loop on this VM, the zygote's wake-up to the report's took a median of
/// 244 µs (the zygote is often forking the next spare then). A child killed by a signal
/// writes nothing, and its end is the zygote's report. (A child killed between its write
/// and its `_exit` is taken to have exited with the code it wrote.)
struct Reports {
    inner: Mutex<ReportsInner>,
    /// The reader thread's epoll set: the report socket, and the pidfds of the children
    /// that run on spares (keyed [`TOLD`] | pid).
    epoll: OwnedFd,
}

struct ReportsInner {
    /// The zygote is gone: no report will come any more.
    dead: bool,
    pids: HashMap<i32, Entry>,
    /// The spares the zygote made ready, oldest first.
    spares: std::collections::VecDeque<Spare>,
    /// The children running on spares, by pid: their request socket and pidfd.
    running: HashMap<i32, (UnixStream, OwnedFd)>,
}

/// A spare the zygote made ready: its pid, request socket and pidfd.
struct Spare {
    pid: i32,
    socket: UnixStream,
    pidfd: OwnedFd,
}

enum Entry {
    Waiting(oneshot::Sender<ExitStatus>),
    /// The end was reported before the host had registered the pid.
    Ended(ExitStatus),
    /// The child told its end itself; the zygote's report of it is dropped.
    Told,
}

/// The key of the report socket in the reader's epoll set.
const REPORTS_KEY: u64 = 1 << 40;
/// The key bit of a pidfd in the reader's epoll set (below it: the pid).
const TOLD: u64 = 1 << 41;

impl Zygote {
    pub fn new(exe: PathBuf) -> Self {
        Zygote {
            exe,
            link: Mutex::new(None),
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
        let mut guard = crate::model::lock(&self.link);
        let alive = guard
            .as_ref()
            .is_some_and(|l| !crate::model::lock(&l.reports.inner).dead);
        if !alive {
            use std::sync::atomic::Ordering::Relaxed;
            *guard = None;
            let failures = self.start_failures.load(Relaxed);
            if failures >= MAX_START_FAILURES {
                return Err(StartError::NotSent(format!(
                    "the fork server failed to start {failures} times"
                )));
            }
            let link = Link::start(&self.exe).map_err(|e| {
                self.start_failures.fetch_add(1, Relaxed);
                StartError::NotSent(format!(
                    "cannot start the fork server {} {} {ZYGOTE_FLAG}: {e}",
                    self.exe.display(),
                    super::native::CHILD_SUBCOMMAND,
                ))
            })?;
            self.start_failures.store(0, Relaxed);
            *guard = Some(link);
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
                    // Whatever happened to it, this zygote is not asked again.
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

impl Drop for Zygote {
    /// Closes the zygote's request socket and waits a little for it to exit, so that a
    /// host that ends leaves no zygote behind. Its children have normally all ended (a
    /// host ends its processes first); if not, the zygote reaps them before it exits.
    fn drop(&mut self) {
        if let Some(link) = crate::model::lock(&self.link).take() {
            let Link {
                requests,
                gone,
                reports,
            } = link;
            // The spares not taken exit when their sockets close; the zygote waits for them.
            crate::model::lock(&reports.inner).spares.clear();
            drop(requests);
            let _ = gone.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}

impl Link {
    /// Starts a zygote, and the host thread that reads its reports (and started it, so
    /// that the zygote's parent-death signal fires only when the host process dies).
    fn start(exe: &Path) -> std::io::Result<Link> {
        let (requests, zygote_requests) = UnixStream::pair()?;
        let (reports_in, zygote_reports) = UnixStream::pair()?;
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
            .name("wasmproc-zygote".into())
            .spawn(move || {
                let _gone = gone_tx;
                let child = Command::new(&exe)
                    .args([
                        super::native::CHILD_SUBCOMMAND,
                        ZYGOTE_FLAG,
                        &std::process::id().to_string(),
                    ])
                    .stdin(Stdio::from(OwnedFd::from(zygote_requests)))
                    .stdout(Stdio::from(OwnedFd::from(zygote_reports)))
                    .stderr(Stdio::inherit())
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
                // End-of-file: the zygote has exited (or is exiting); reap it.
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
        Ok(Link {
            requests,
            reports,
            gone,
        })
    }

    /// Sends one request and reads the pid of the child the zygote forked.
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

/// What the zygote writes on its report socket: 12 bytes, kind, pid and wait status.
/// A child ended.
const ENDED: u32 = 0;
/// A spare is ready: its request socket comes with the message (no status).
const SPARE: u32 = 1;
/// A spare ended: the child it ran if it was handed a request, else nothing to report.
const SPARE_ENDED: u32 = 2;

impl Reports {
    /// Hands the request to the spare the zygote made ready, if there is one; returns its
    /// pid and where its end will be reported.
    fn start_on_spare(
        &self,
        spec: &[u8],
        fds: &ChildFds<'_>,
    ) -> Option<(i32, oneshot::Receiver<ExitStatus>)> {
        let mut inner = crate::model::lock(&self.inner);
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
        let mut inner = crate::model::lock(&self.inner);
        let watched = watch_in(&self.epoll, &pidfd, key);
        // Unwatched, its end comes with the zygote's report.
        if watched.is_ok() {
            inner.running.insert(pid, (socket, pidfd));
        }
        Some((pid, rx))
    }

    /// The child `pid`, which ran on a spare, has exited: its end is the exit code it
    /// wrote on its request socket, if it wrote one (else the zygote's report tells it).
    fn exited(&self, pid: i32) {
        let mut inner = crate::model::lock(&self.inner);
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
        let mut inner = crate::model::lock(&self.inner);
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

    /// Reads the zygote's reports until it is gone (and takes the ends the children on
    /// spares tell), then ends every child it left.
    fn read_all(&self, reports: UnixStream) {
        let watched = watch_in(&self.epoll, &reports, REPORTS_KEY);
        let mut events = Vec::with_capacity(16);
        let mut reading = watched.is_ok();
        while reading {
            if wait_in(&self.epoll, &mut events).is_err() {
                break;
            }
            // The told ends first: the zygote's reports of the same ends may be among
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
        self.zygote_gone();
    }

    /// Takes one report from the zygote; `false` when it is gone.
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
                crate::model::lock(&self.inner).spares.push_back(spare);
            }
            return true;
        }
        let status = {
            use std::os::unix::process::ExitStatusExt;
            super::native::exit_status(std::process::ExitStatus::from_raw(raw))
        };
        let mut inner = crate::model::lock(&self.inner);
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

    /// The zygote is gone: ends already reported stay for their registration; the others
    /// never will be.
    fn zygote_gone(&self) {
        let pending: Vec<(i32, Entry)> = {
            let mut inner = crate::model::lock(&self.inner);
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

/// Reads one message of the zygote's report socket: kind, pid, status, and the descriptor
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

/// Ends a child whose zygote died (nobody can report its end any more): it is killed.
fn orphaned(pid: i32) -> ExitStatus {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    ExitStatus::Signaled(Signal::Kill)
}

// ---------------------------------------------------------------------------------------
// The zygote process.

/// One received request: a child's description and its descriptors.
struct Request {
    spec: Vec<u8>,
    fds: Vec<OwnedFd>,
}

use super::native::ForkServer;

/// The entry point of `<exe> __child --zygote <host pid>`: serves requests on stdin,
/// reports ends on stdout, until stdin closes and every child has been reaped.
pub(crate) fn zygote_main(host: Option<&str>) -> u8 {
    // Die with the host thread that started this process (it lives as long as the host
    // process wants this zygote). The end of the request socket is the first guard (also
    // when the host died before this line); this is the second one, and only when the host
    // is this process's parent (not when a wrapper of the executable stands between them).
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
    if parent != host.and_then(|h| h.parse::<i32>().ok()) {
        let _ = rustix::process::set_parent_process_death_signal(None);
    }
    // Nothing the host process happened to leave inheritable stays open here.
    close_all_but([]);
    // Before anything is forked, and while this process has one thread. (When it cannot,
    // the code stays mapped from the file: children then fault it in, as before.)
    let _ = super::hugetext::back_code_with_huge_pages();
    match serve() {
        Ok(()) => 0,
        Err(e) => {
            say(format_args!("wasmproc: the native fork server failed: {e}"));
            1
        }
    }
}

fn serve() -> std::io::Result<()> {
    use rustix::event::epoll;
    // SAFETY: stdin and stdout are this process's request and report sockets, open for its
    // whole life; nothing else in this process uses them.
    let (requests, reports) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) };
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    const REQUESTS: u64 = 0;
    watch_in(&epoll, requests, REQUESTS)?;
    let mut procs = Procs {
        epoll,
        children: HashMap::new(),
        spares: HashMap::new(),
    };
    // The note sockets of the spares not yet handed a request (see `fork_spare`), by key:
    // `NOTE` and the spare's pid.
    const NOTE: u64 = 1 << 40;
    let mut notes: HashMap<u64, UnixStream> = HashMap::new();
    // New spares are due when this timer fires (see `SPARE_DELAY`); the requests the last
    // spares copied, whose programs this server loads then.
    const DUE: u64 = 1 << 41;
    let due = rustix::time::timerfd_create(
        rustix::time::TimerfdClockId::Monotonic,
        rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
    )?;
    watch_in(&procs.epoll, &due, DUE)?;
    let mut copied: Vec<Vec<u8>> = Vec::new();
    let mut armed = false;
    let arm = |armed: &mut bool| -> std::io::Result<()> {
        if *armed {
            return Ok(());
        }
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let delay = rustix::time::Itimerspec {
            it_interval: zero,
            it_value: rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(SPARE_DELAY.subsec_nanos()),
            },
        };
        rustix::time::timerfd_settime(&due, rustix::time::TimerfdTimerFlags::empty(), &delay)?;
        *armed = true;
        Ok(())
    };
    let mut server = ForkServer::new()?;
    // WASI's random streams are ChaCha generators, whose first use probes the CPU for AVX2
    // (cpuid: a VM exit under virtualisation, about 40 µs per child here). Probe once here,
    // so that every child inherits the answer. A fixed seed and a generator dropped at once:
    // no random state is shared, and each child seeds its own from the OS.
    {
        use rand::{Rng, SeedableRng};
        let _ = rand::rngs::StdRng::from_seed([0; 32]).next_u64();
    }
    // Ready: the host waits for this before its first request.
    write_all(requests, &0i64.to_le_bytes())?;
    let mut open = true;
    let mut events = Vec::with_capacity(64);
    while open || !procs.children.is_empty() || !procs.spares.is_empty() {
        wait_in(&procs.epoll, &mut events)?;
        for event in events.drain(..) {
            let key = event.data.u64();
            if key == REQUESTS {
                match receive(requests)? {
                    Some(request) => {
                        let prepared = server.prepare(&request.spec);
                        let pid = fork_child(&mut server, prepared, request, &mut procs);
                        write_all(requests, &pid.to_le_bytes())?;
                        // Spares for the next requests are made soon, while this one runs.
                        if notes.len() < SPARES && server.has_engine() {
                            arm(&mut armed)?;
                        }
                    }
                    None => {
                        // The host is done with this zygote: no more children will come
                        // (the host has closed its spare's socket: the spare exits).
                        epoll::delete(&procs.epoll, requests)?;
                        open = false;
                    }
                }
                continue;
            }
            if key == DUE {
                let mut expirations = [0u8; 8];
                let _ = rustix::io::read(&due, &mut expirations);
                armed = false;
                for spec in copied.drain(..) {
                    let _ = server.prepare(&spec);
                }
                while open && notes.len() < SPARES && server.has_engine() {
                    match fork_spare(&mut server, &mut procs, NOTE, reports)? {
                        Some((key, note)) => {
                            notes.insert(key, note);
                        }
                        None => break,
                    }
                }
                continue;
            }
            if key & NOTE != 0 {
                // The spare was handed a request (which it copies here, so that this server
                // loads its program for the spares to come), or it is exiting: a new spare
                // is due.
                if let Some(socket) = notes.remove(&key) {
                    let _ = epoll::delete(&procs.epoll, &socket);
                    if let Ok(Some(spec)) = read_note(socket.as_fd()) {
                        copied.push(spec);
                    }
                    if open {
                        arm(&mut armed)?;
                    }
                }
                continue;
            }
            let pid = i32::try_from(key).unwrap_or(0);
            let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
                continue;
            };
            let status =
                match rustix::process::waitpid(Some(rpid), rustix::process::WaitOptions::NOHANG) {
                    Ok(Some((_, status))) => status.as_raw(),
                    Ok(None) => continue,
                    // Not a child of this process (cannot happen): report it failed.
                    Err(rustix::io::Errno::CHILD) => 1 << 8,
                    Err(e) => return Err(e.into()),
                };
            // Taken out of the set explicitly: a process forked a moment ago may still hold
            // a copy of this pidfd, which would keep it registered.
            let kind = if let Some(pidfd) = procs.spares.remove(&pid) {
                let _ = epoll::delete(&procs.epoll, &pidfd);
                SPARE_ENDED
            } else {
                if let Some(pidfd) = procs.children.remove(&pid) {
                    let _ = epoll::delete(&procs.epoll, &pidfd);
                }
                ENDED
            };
            // A host that stopped listening has no use for the report; the child is reaped
            // all the same.
            let _ = write_report(reports, kind, pid, status, &[]);
        }
    }
    Ok(())
}

/// How many spares the zygote keeps ready. One is handed the next request; the others
/// cover the time until the zygote has made its replacement, which may be a millisecond or
/// more: the zygote's wake-up may wait for the CPU that the child it just started runs on.
/// The host hands a request to a spare as soon as the zygote announced it, before it is
/// warm: in a trace of the bench's loop with two, one request in ten was taken up by its
/// spare over 2.8 ms after it was sent. A third gives each spare half as much time again
/// (each costs about 300 KiB of its own memory); in seven alternating pairs of runs from
/// the CLI, the 90th percentile of a start+join went down by 2–23% in all seven, and the
/// median moved within the noise.
const SPARES: usize = 3;

/// How long after a spare was handed its request (or after a forked start) new spares are
/// forked. Woken by the spare's note, this process may be on the CPU that the spare's child
/// runs on; forking there at once (hundreds of µs) would hold that child up.
const SPARE_DELAY: std::time::Duration = std::time::Duration::from_micros(300);

/// The zygote's processes, each watched through its pidfd (readable once it has ended) in
/// the zygote's epoll set, keyed by pid.
struct Procs {
    epoll: OwnedFd,
    /// Children forked for a request.
    children: HashMap<i32, OwnedFd>,
    /// Spares (forked ahead of their request, which the host hands them).
    spares: HashMap<i32, OwnedFd>,
}

impl Procs {
    /// Watches the process `pid` just forked; `None` (it is killed and reaped) when it
    /// cannot be watched: no process is left that nobody would reap.
    fn watch(&self, pid: i32) -> Result<OwnedFd, rustix::io::Errno> {
        let rpid = rustix::process::Pid::from_raw(pid).ok_or(rustix::io::Errno::SRCH)?;
        let watched = rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty())
            .and_then(|pidfd| {
                let key = u64::try_from(pid).unwrap_or(0);
                watch_in(&self.epoll, &pidfd, key)?;
                Ok(pidfd)
            });
        if let Err(e) = &watched {
            say(format_args!(
                "wasmproc: the native fork server cannot watch process {pid}: {e}"
            ));
            let _ = rustix::process::kill_process(rpid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(rpid), rustix::process::WaitOptions::empty());
        }
        watched
    }
}

/// Waits for events of the epoll set `epoll` (as many as `events` has room for), in place
/// of those `events` held; a signal does not end the wait.
fn wait_in(
    epoll: &OwnedFd,
    events: &mut Vec<rustix::event::epoll::Event>,
) -> rustix::io::Result<()> {
    events.clear();
    loop {
        match rustix::event::epoll::wait(epoll, rustix::buffer::spare_capacity(events), None) {
            Err(rustix::io::Errno::INTR) => continue,
            result => return result.map(drop),
        }
    }
}

/// Adds `fd` to the epoll set `epoll`, to be reported readable under `key`.
fn watch_in(epoll: &OwnedFd, fd: impl AsFd, key: u64) -> rustix::io::Result<()> {
    use rustix::event::epoll;
    epoll::add(
        epoll,
        fd,
        epoll::EventData::new_u64(key),
        epoll::EventFlags::IN,
    )
}

/// Writes one message on the report socket (see [`ENDED`]), with descriptors `fds`.
fn write_report(
    socket: BorrowedFd<'_>,
    kind: u32,
    pid: i32,
    status: i32,
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    let mut message = [0u8; 12];
    message[..4].copy_from_slice(&kind.to_le_bytes());
    message[4..8].copy_from_slice(&pid.to_le_bytes());
    message[8..].copy_from_slice(&status.to_le_bytes());
    if fds.is_empty() {
        return write_all(socket, &message);
    }
    let sent = send_with_fds(socket, &message, fds, rustix::net::SendFlags::NOSIGNAL)?;
    write_all(socket, &message[sent..])
}

/// Reads what a spare wrote on its note socket before closing it: the description it was
/// handed, or `None` when it closed it without one.
fn read_note(socket: BorrowedFd<'_>) -> std::io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    match rustix::io::read(socket, &mut header) {
        Ok(0) => return Ok(None),
        Ok(n) => read_exact(socket, &mut header[n..])?,
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(header) as usize;
    let mut spec = vec![0u8; 4 + len];
    spec[..4].copy_from_slice(&header);
    read_exact(socket, &mut spec[4..])?;
    Ok(Some(spec))
}

/// Reads one request; `None` at end-of-file.
fn receive(socket: BorrowedFd<'_>) -> std::io::Result<Option<Request>> {
    let mut header = [0u8; 4];
    let (got, fds) = recv_with_fds(socket, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < header.len() {
        read_exact(socket, &mut header[got..])?;
    }
    // The description is its length (4 bytes, little-endian) and its postcard encoding,
    // exactly what an executed child reads on its stdin.
    let len = u32::from_le_bytes(header) as usize;
    let mut spec = vec![0u8; 4 + len];
    spec[..4].copy_from_slice(&header);
    read_exact(socket, &mut spec[4..])?;
    if fds.len() != FDS {
        return Err(std::io::Error::other(format!(
            "a request came with {} descriptors, not {FDS}",
            fds.len()
        )));
    }
    Ok(Some(Request { spec, fds }))
}

fn read_exact(fd: BorrowedFd<'_>, mut buf: &mut [u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::read(fd, &mut *buf) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match rustix::net::send(fd, buf, rustix::net::SendFlags::NOSIGNAL) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Forks the child of `request`; returns its pid, or minus the `fork` error number.
fn fork_child(
    server: &mut ForkServer,
    prepared: anyhow::Result<super::native::Prepared>,
    request: Request,
    procs: &mut Procs,
) -> i64 {
    // SAFETY: this process is single-threaded (it starts no thread, and neither does
    // anything it calls), so the child is a complete copy: no lock is held by a thread that
    // does not exist in it, and it may allocate and run ordinary code before it exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match become_child(request.fds, false) {
            Some(keep) => server.run_forked(prepared, None, keep),
            None => 1,
        };
        std::process::exit(i32::from(code));
    }
    if pid < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return -i64::from(errno);
    }
    // This process's copies of the child's descriptors close here (the request drops).
    drop(request);
    match procs.watch(pid) {
        Ok(pidfd) => {
            procs.children.insert(pid, pidfd);
            i64::from(pid)
        }
        Err(e) => -i64::from(e.raw_os_error()),
    }
}

/// Forks a spare, which waits for the next request from the host: the host gets the
/// spare's request socket in a [`SPARE`] message. Returns the zygote's end of the spare's
/// *note* socket, registered in the epoll set as `key` and its pid (the key returned): the
/// spare writes its request on it
/// and closes it once it has one, and it closes when the spare dies. `None` when no spare
/// could be made (requests are forked). An error only when the report socket failed.
fn fork_spare(
    server: &mut ForkServer,
    procs: &mut Procs,
    key: u64,
    reports: BorrowedFd<'_>,
) -> std::io::Result<Option<(u64, UnixStream)>> {
    let (Ok((requests, theirs)), Ok((note, their_note))) = (UnixStream::pair(), UnixStream::pair())
    else {
        return Ok(None);
    };
    let zygote = rustix::process::getpid();
    // SAFETY: as in `fork_child`, this process is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop((requests, note));
        spare_main(
            server,
            OwnedFd::from(theirs),
            OwnedFd::from(their_note),
            zygote,
        );
    }
    drop((theirs, their_note));
    if pid < 0 {
        return Ok(None);
    }
    let Ok(pidfd) = procs.watch(pid) else {
        return Ok(None);
    };
    procs.spares.insert(pid, pidfd);
    let key = key | u64::try_from(pid).unwrap_or(0);
    let watched = watch_in(&procs.epoll, &note, key);
    if watched.is_err() {
        // Not announced: its socket closes here, and it exits.
        return Ok(None);
    }
    // The host takes this copy; the spare's end is its only other one. The host watches
    // the spare's pidfd too, once it hands it a child (a copy goes with the report).
    let pidfd = procs.spares.get(&pid).map(|fd| fd.as_fd());
    let Some(pidfd) = pidfd else {
        return Ok(None);
    };
    write_report(reports, SPARE, pid, 0, &[requests.as_fd(), pidfd])?;
    Ok(Some((key, note)))
}

/// A spare's life: it gets ready to run a child, waits for its request from the host,
/// copies it to the zygote and runs it. It exits when the host closes its request socket
/// or the zygote dies.
fn spare_main(
    server: &mut ForkServer,
    requests: OwnedFd,
    note: OwnedFd,
    zygote: rustix::process::Pid,
) -> ! {
    // Die with the zygote (it is this process's parent; if it died already, end now).
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid() != Some(zygote) {
        std::process::exit(0);
    }
    // The zygote's sockets are its stdin and stdout: this process must not hold them.
    let quiet = (|| -> std::io::Result<()> {
        let null = open_null()?;
        dup_onto(null.as_fd(), 0)?;
        dup_onto(null.as_fd(), 1)?;
        Ok(())
    })();
    if quiet.is_err() {
        std::process::exit(1);
    }
    let (requests, note) = (requests.into_raw_fd(), note.into_raw_fd());
    close_all_but([requests, note]);
    // SAFETY: the descriptors were just turned into raw ones, and close_all_but kept them.
    let (requests, note) = unsafe { (OwnedFd::from_raw_fd(requests), OwnedFd::from_raw_fd(note)) };
    let warm = server.warm();
    if let Ok(warm) = &warm {
        server.rehearse(warm);
    }
    let request = match receive(requests.as_fd()) {
        Ok(Some(request)) => request,
        // The host let it go, or is gone.
        Ok(None) => std::process::exit(0),
        Err(e) => {
            say(format_args!(
                "wasmproc: native child failed: a bad request: {e}"
            ));
            std::process::exit(1);
        }
    };
    // The zygote learns this request's program (and forks the next spare) from this.
    let _ = write_all(note.as_fd(), &request.spec);
    drop(note);
    // The child tells its host its exit code on this socket, just before it exits.
    super::native::tell_end_on(requests);
    let prepared = server.lookup(&request.spec);
    let code = match become_child(request.fds, true) {
        Some(keep) => server.run_forked(prepared, Some(warm), keep),
        None => 1,
    };
    super::native::exit_now(code);
}

/// `/dev/null`, for reading and writing (close-on-exec).
fn open_null() -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// In a forked child with its request's descriptors: sets up its descriptors as an
/// executed child has them; returns the numbers of the three it keeps (lifeline, parent
/// pipe, slot), or `None` (reported on stderr) when it cannot. A spare (`spare`) has
/// `/dev/null` as its stdin already, and closed what it inherited before it made its
/// scheduler; a child forked for its request closes everything else here.
fn become_child(fds: Vec<OwnedFd>, spare: bool) -> Option<[RawFd; 3]> {
    let [stdout, stderr, parent, slot, lifeline]: [OwnedFd; FDS] = fds.try_into().ok()?;
    let standard = (|| -> std::io::Result<()> {
        // These replace the zygote's sockets (its stdin and stdout) in this process.
        if !spare {
            dup_onto(open_null()?.as_fd(), 0)?;
        }
        dup_onto(stdout.as_fd(), 1)?;
        dup_onto(stderr.as_fd(), 2)?;
        Ok(())
    })();
    if let Err(e) = standard {
        say(format_args!(
            "wasmproc: native child failed: cannot set up its standard streams: {e}"
        ));
        return None;
    }
    drop((stdout, stderr));
    let keep = [
        lifeline.into_raw_fd(),
        parent.into_raw_fd(),
        slot.into_raw_fd(),
    ];
    if !spare {
        close_all_but(keep);
    }
    Some(keep)
}

/// Writes a line on stderr, if it can (`eprintln!` would panic on a closed pipe).
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Makes descriptor `target` (a standard stream) a copy of `fd`.
fn dup_onto(fd: BorrowedFd<'_>, target: RawFd) -> std::io::Result<()> {
    // SAFETY: `target` is a standard descriptor, open in this process; the `OwnedFd` made
    // of it is never dropped, so it never closes it.
    let mut target = std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(target) });
    rustix::io::dup2(fd, &mut target)?;
    Ok(())
}

/// Closes every descriptor from 3 up but `keep` (the zygote's epoll set, its children's
/// pidfds and whatever else it had open): after a fork there is no exec to close them.
fn close_all_but<const N: usize>(mut keep: [RawFd; N]) {
    keep.sort_unstable();
    let mut first: u32 = 3;
    for fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > first {
            close_range(first, fd - 1);
        }
        first = first.max(fd + 1);
    }
    close_range(first, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes descriptors; the ones closed here are owned by
    // nothing this process will use again (see `close_all_but`).
    unsafe {
        libc::syscall(libc::SYS_close_range, first, last, 0u32);
    }
}

/// Whether `fd` is open in this process (for tests).
#[cfg(test)]
fn is_open(fd: RawFd) -> bool {
    // SAFETY: only asks about the descriptor.
    rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) }).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_all_but_keeps_exactly_those() {
        // SAFETY: the forked copy of this (multi-threaded) test process makes only system
        // calls and ends with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let a = rustix::io::dup(std::io::stderr()).unwrap().into_raw_fd();
            let b = rustix::io::dup(std::io::stderr()).unwrap().into_raw_fd();
            let c = rustix::io::dup(std::io::stderr()).unwrap().into_raw_fd();
            let d = rustix::io::dup(std::io::stderr()).unwrap().into_raw_fd();
            close_all_but([c, a, d]);
            // Only system calls here: the test binary has other threads, so the forked copy
            // must not allocate.
            let kept = is_open(a) && is_open(c) && is_open(d) && (0..3).all(is_open);
            let others_closed = (3..1024)
                .filter(|fd| ![a, c, d].contains(fd))
                .all(|fd| !is_open(fd));
            let _ = b;
            // SAFETY: ends the forked test process at once.
            unsafe { libc::_exit(if kept && others_closed { 0 } else { 1 }) };
        }
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        assert_eq!(status.exit_status(), Some(0));
    }
}
