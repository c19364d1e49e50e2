//! What watches a native child process without a thread of its own ([`watch`]): a timer
//! of its CPU time ticks the engine's epoch and checks the run's lifeline; tasks of its
//! scheduler watch the lifeline and the parent pipe while it waits.

use std::os::fd::OwnedFd;

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
/// runs, and a child that sleeps or waits is not woken every tick (with a wall clock, many
/// sleeping children take a signal each per tick between them, and slow every start).
pub(super) fn watch(
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
