//! The fork server process (`<exe> __child --zygote`): it serves the host's requests on
//! its stdin and reports ends on its stdout (see [`super`]), forks each child, and keeps
//! spares forked ahead of their requests.

use super::*;
use crate::backend::native::child::{Preloaded, Prepared, exit_now, tell_end_on};

struct Request {
    spec: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// The entry point of `<exe> __child --zygote <host pid>` (the fork server): serves requests on stdin,
/// reports ends on stdout, until stdin closes and every child has been reaped.
pub(crate) fn server_main(host: Option<&str>) -> u8 {
    // Die with the host thread that started this process (it lives as long as the host
    // process wants this fork server). The end of the request socket is the first guard (also
    // when the host died before this line); this is the second one, and only when the host
    // is this process's parent (not when a wrapper of the executable stands between them).
    // The signal's handler kills this process's group: every process this fork server
    // forked, and every process those executed, with it.
    on_signal(HOST_GONE, kill_group as *const () as libc::sighandler_t);
    let _ = rustix::process::set_parent_process_death_signal(Some(
        rustix::process::Signal::from_named_raw(HOST_GONE).unwrap_or(rustix::process::Signal::KILL),
    ));
    let parent = rustix::process::getppid();
    let host = host.and_then(|h| h.parse::<i32>().ok());
    if parent.map(|p| p.as_raw_nonzero().get()) != host {
        let _ = rustix::process::set_parent_process_death_signal(None);
    }
    let _ = HOST_PARENT.set(parent);
    // Nothing the host process happened to leave inheritable stays open here.
    close_all_but([]);
    // Before anything is forked, and while this process has one thread. (When it cannot,
    // the code stays mapped from the file: children then fault it in, as before.)
    let _ = super::super::hugetext::back_code_with_huge_pages();
    match serve() {
        Ok(()) => 0,
        Err(e) => {
            say(format_args!("wasmproc: the native fork server failed: {e}"));
            1
        }
    }
}

/// The signal the fork server gets when its host process dies (`PR_SET_PDEATHSIG`).
const HOST_GONE: libc::c_int = libc::SIGUSR2;

/// The fork server's parent when it started: its host, unless a wrapper stands between.
static HOST_PARENT: std::sync::OnceLock<Option<rustix::process::Pid>> = std::sync::OnceLock::new();

/// Kills the fork server's process group at once: itself, its spares, the children it
/// forked, and every process they executed (a guest cannot leave the group: it makes no
/// system calls of its own). The kernel delivers the signal to them all in this one call,
/// however many there are and however loaded the machine is, where each process noticing
/// the run's lifeline on its own took seconds under a spawn bomb. Async-signal-safe: it is
/// also the handler of [`HOST_GONE`]. Only a fork server that leads its group (as its host
/// starts it) kills it: never the group of whoever else ran it.
extern "C" fn kill_group(_signal: libc::c_int) {
    // SAFETY: `getpgrp` and `getpid` cannot fail; the kill signals this process's group,
    // whose leader this process is.
    unsafe {
        if libc::getpgrp() == libc::getpid() {
            libc::kill(0, libc::SIGKILL);
        }
    }
}

/// Sets the handler of `signal` (`SIG_DFL`, or a function that makes only async-signal-safe
/// calls).
fn on_signal(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction is valid; the handler is the default or async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// The state of the serving loop: the request and report sockets (this process's stdin
/// and stdout), the processes it watches, and its spares.
struct Server {
    requests: BorrowedFd<'static>,
    reports: BorrowedFd<'static>,
    procs: Procs,
    /// The note sockets of the spares not yet handed a request (see `fork_spare`), by key:
    /// [`NOTE`] and the spare's pid.
    notes: HashMap<u64, UnixStream>,
    /// Fires when new spares are due (see [`SPARE_DELAY`]).
    due: OwnedFd,
    armed: bool,
    /// The requests the last spares copied, whose programs are loaded when spares are due.
    copied: Vec<Vec<u8>>,
    preloaded: Preloaded,
    /// Requests still come (the host has not closed its socket).
    open: bool,
}

/// Keys of the serving loop's epoll set (below [`NOTE`]: a pid).
const REQUESTS: u64 = 0;
const NOTE: u64 = 1 << 40;
const DUE: u64 = 1 << 41;

fn serve() -> std::io::Result<()> {
    let mut server = Server::new()?;
    // Ready: the host waits for this before its first request.
    write_all(server.requests, &0i64.to_le_bytes())?;
    let mut events = Vec::with_capacity(64);
    while server.open || !server.procs.children.is_empty() || !server.procs.spares.is_empty() {
        wait_in(&server.procs.epoll, &mut events)?;
        for event in events.drain(..) {
            match event.data.u64() {
                REQUESTS => server.on_request()?,
                DUE => server.on_due()?,
                key if key & NOTE != 0 => server.on_note(key)?,
                key => server.on_exit(key)?,
            }
        }
    }
    Ok(())
}

impl Server {
    fn new() -> std::io::Result<Server> {
        use rustix::event::epoll;
        // SAFETY: stdin and stdout are this process's request and report sockets, open for
        // its whole life; nothing else in this process uses them.
        let (requests, reports) = unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) };
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        watch_in(&epoll, requests, REQUESTS)?;
        let due = rustix::time::timerfd_create(
            rustix::time::TimerfdClockId::Monotonic,
            rustix::time::TimerfdFlags::CLOEXEC | rustix::time::TimerfdFlags::NONBLOCK,
        )?;
        watch_in(&epoll, &due, DUE)?;
        let preloaded = Preloaded::new()?;
        // WASI's random streams are ChaCha generators, whose first use probes the CPU for
        // AVX2 (cpuid: a VM exit under virtualisation). Probe once here, so that every
        // child inherits the answer. A fixed seed and a generator dropped at once: no random
        // state is shared, and each child seeds its own from the OS.
        {
            use rand::{Rng, SeedableRng};
            let _ = rand::rngs::StdRng::from_seed([0; 32]).next_u64();
        }
        Ok(Server {
            requests,
            reports,
            procs: Procs {
                epoll,
                children: HashMap::new(),
                spares: HashMap::new(),
            },
            notes: HashMap::new(),
            due,
            armed: false,
            copied: Vec::new(),
            preloaded,
            open: true,
        })
    }

    /// Makes new spares due [`SPARE_DELAY`] from now, unless they already are.
    fn arm(&mut self) -> std::io::Result<()> {
        if self.armed {
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
        rustix::time::timerfd_settime(&self.due, rustix::time::TimerfdTimerFlags::empty(), &delay)?;
        self.armed = true;
        Ok(())
    }

    /// A request from the host (or the end of its socket).
    fn on_request(&mut self) -> std::io::Result<()> {
        match receive(self.requests)? {
            Some(request) if request.short() => {
                write_all(self.requests, &(-i64::from(libc::EMFILE)).to_le_bytes())?;
            }
            Some(request) => {
                let prepared = self.preloaded.prepare(&request.spec);
                let pid = fork_child(&mut self.preloaded, prepared, request, &mut self.procs);
                write_all(self.requests, &pid.to_le_bytes())?;
                // Spares for the next requests are made soon, while this one runs.
                if self.notes.len() < SPARES && self.preloaded.has_engine() {
                    self.arm()?;
                }
            }
            None => {
                // The host died (this process has another parent now): its runs end
                // with it, all at once.
                if HOST_PARENT
                    .get()
                    .is_some_and(|p| *p != rustix::process::getppid())
                {
                    kill_group(0);
                }
                // The host is done with this server: no more children will come (the host
                // has closed its spares' sockets: they exit).
                rustix::event::epoll::delete(&self.procs.epoll, self.requests)?;
                self.open = false;
            }
        }
        Ok(())
    }

    /// New spares are due: the programs the last ones were asked for are loaded first.
    fn on_due(&mut self) -> std::io::Result<()> {
        let mut expirations = [0u8; 8];
        let _ = rustix::io::read(&self.due, &mut expirations);
        self.armed = false;
        for spec in self.copied.drain(..) {
            let _ = self.preloaded.prepare(&spec);
        }
        while self.open && self.notes.len() < SPARES && self.preloaded.has_engine() {
            match fork_spare(&mut self.preloaded, &mut self.procs, NOTE, self.reports)? {
                Some((key, note)) => {
                    self.notes.insert(key, note);
                }
                None => break,
            }
        }
        Ok(())
    }

    /// The spare of `key` was handed a request (which it copies here, so that this server
    /// loads its program for the spares to come), or it is exiting: a new spare is due.
    fn on_note(&mut self, key: u64) -> std::io::Result<()> {
        if let Some(socket) = self.notes.remove(&key) {
            let _ = rustix::event::epoll::delete(&self.procs.epoll, &socket);
            if let Ok(Some(spec)) = read_note(socket.as_fd()) {
                self.copied.push(spec);
            }
            if self.open {
                self.arm()?;
            }
        }
        Ok(())
    }

    /// The process whose pid is `key` has ended: it is reaped and its end reported.
    fn on_exit(&mut self, key: u64) -> std::io::Result<()> {
        use rustix::event::epoll;
        let pid = i32::try_from(key).unwrap_or(0);
        let Some(rpid) = rustix::process::Pid::from_raw(pid) else {
            return Ok(());
        };
        let status =
            match rustix::process::waitpid(Some(rpid), rustix::process::WaitOptions::NOHANG) {
                Ok(Some((_, status))) => status.as_raw(),
                Ok(None) => return Ok(()),
                // Not a child of this process (cannot happen): report it failed.
                Err(rustix::io::Errno::CHILD) => 1 << 8,
                Err(e) => return Err(e.into()),
            };
        // Taken out of the set explicitly: a process forked a moment ago may still hold a
        // copy of this pidfd, which would keep it registered.
        let kind = if let Some(pidfd) = self.procs.spares.remove(&pid) {
            let _ = epoll::delete(&self.procs.epoll, &pidfd);
            SPARE_ENDED
        } else {
            if let Some(pidfd) = self.procs.children.remove(&pid) {
                let _ = epoll::delete(&self.procs.epoll, &pidfd);
            }
            ENDED
        };
        // A host that stopped listening has no use for the report; the child is reaped all
        // the same.
        let _ = write_report(self.reports, kind, pid, status, &[]);
        Ok(())
    }
}

/// How many spares the fork server keeps ready. One is handed the next request; the others
/// cover the time until the fork server has made its replacement, which may be a
/// millisecond or more: its wake-up may wait for the CPU that the child it just started
/// runs on, and the host hands a request to a spare as soon as it was announced, before it
/// is warm. Each costs a few hundred KiB of its own memory; BENCHMARKS.md has the
/// measurements that chose three.
const SPARES: usize = 3;

/// How long after a spare was handed its request (or after a forked start) new spares are
/// forked. Woken by the spare's note, this process may be on the CPU that the spare's child
/// runs on; forking there at once (hundreds of µs) would hold that child up.
const SPARE_DELAY: std::time::Duration = std::time::Duration::from_micros(300);

/// The fork server's processes, each watched through its pidfd (readable once it has ended) in
/// the fork server's epoll set, keyed by pid.
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
pub(super) fn wait_in(
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
pub(super) fn watch_in(epoll: &OwnedFd, fd: impl AsFd, key: u64) -> rustix::io::Result<()> {
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
    // Fewer descriptors than sent (the kernel drops those the receiver has no room for) is
    // the request's failure, not the socket's: see `Request::short`.
    Ok(Some(Request { spec, fds }))
}

impl Request {
    /// Whether fewer descriptors came than were sent: this process had no room for them
    /// (its `RLIMIT_NOFILE`), which the host reports as that limit.
    fn short(&self) -> bool {
        self.fds.len() != FDS
    }
}

pub(super) fn read_exact(fd: BorrowedFd<'_>, mut buf: &mut [u8]) -> std::io::Result<()> {
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
    server: &mut Preloaded,
    prepared: anyhow::Result<Prepared>,
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
        Err(e) => {
            // Unwatched, its end would never be reported: it does not run.
            // SAFETY: `pid` is this process's child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            -i64::from(e.raw_os_error())
        }
    }
}

/// Forks a spare, which waits for the next request from the host: the host gets the
/// spare's request socket in a [`SPARE`] message. Returns the fork server's end of the spare's
/// *note* socket, registered in the epoll set as `key` and its pid (the key returned): the
/// spare writes its request on it
/// and closes it once it has one, and it closes when the spare dies. `None` when no spare
/// could be made (requests are forked). An error only when the report socket failed.
fn fork_spare(
    server: &mut Preloaded,
    procs: &mut Procs,
    key: u64,
    reports: BorrowedFd<'_>,
) -> std::io::Result<Option<(u64, UnixStream)>> {
    let (Ok((requests, theirs)), Ok((note, their_note))) = (UnixStream::pair(), UnixStream::pair())
    else {
        return Ok(None);
    };
    let server_pid = rustix::process::getpid();
    // SAFETY: as in `fork_child`, this process is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop((requests, note));
        spare_main(
            server,
            OwnedFd::from(theirs),
            OwnedFd::from(their_note),
            server_pid,
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
/// copies it to the fork server and runs it. It exits when the host closes its request socket
/// or the fork server dies.
fn spare_main(
    server: &mut Preloaded,
    requests: OwnedFd,
    note: OwnedFd,
    server_pid: rustix::process::Pid,
) -> ! {
    // Die with the fork server (it is this process's parent; if it died already, end now).
    on_signal(HOST_GONE, libc::SIG_DFL);
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid() != Some(server_pid) {
        std::process::exit(0);
    }
    // The fork server's sockets are its stdin and stdout: this process must not hold them.
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
        Ok(Some(request)) if request.short() => {
            say(format_args!(
                "wasmproc: native child failed: its request came with {} descriptors, not \
                 {FDS} (limit nofile reached)",
                request.fds.len()
            ));
            std::process::exit(1);
        }
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
    // The fork server learns this request's program (and forks the next spare) from this.
    let _ = write_all(note.as_fd(), &request.spec);
    drop(note);
    // The child tells its host its exit code on this socket, just before it exits.
    tell_end_on(requests);
    let prepared = server.lookup(&request.spec);
    let code = match become_child(request.fds, true) {
        Some(keep) => server.run_forked(prepared, Some(warm), keep),
        None => 1,
    };
    exit_now(code);
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
    // The fork server's own handler is not this process's.
    on_signal(HOST_GONE, libc::SIG_DFL);
    let [stdout, stderr, parent, slot, lifeline]: [OwnedFd; FDS] = fds.try_into().ok()?;
    if !spare {
        // The fork server's other descriptors go first: it may be near its limit of open
        // descriptors, and setting up the standard streams opens one.
        close_all_but(
            [&stdout, &stderr, &parent, &slot, &lifeline].map(std::os::fd::AsRawFd::as_raw_fd),
        );
    }
    let standard = (|| -> std::io::Result<()> {
        // These replace the fork server's sockets (its stdin and stdout) in this process.
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

/// Closes every descriptor from 3 up but `keep` (the fork server's epoll set, its children's
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
