//! One process as seen from outside ([`ProcessCore`]), and the one path by which every
//! process ends, on every backend ([`finish`]).

use super::ctx::ProcessCtx;
use super::run::Entry;
use crate::backend::Control;
use crate::exit::{ExitStatus, Signal};
use crate::lock;
use crate::sync::Link;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

pub(super) enum RunState {
    Unstarted,
    Starting,
    Running(Box<dyn Control>),
    Exited,
}

/// One process as seen from outside: its identity, pid, liveness and how it ended. Shared
/// by the parent's object for it, the process's own context and its children's view of
/// their parent.
pub(crate) struct ProcessCore {
    identity: Vec<u32>,
    pid: OnceLock<u64>,
    /// Live-process counters this process is counted in (its parent's children, its run);
    /// decremented once when it ends.
    pub(super) counted_in: OnceLock<[Arc<AtomicU64>; 2]>,
    pub(super) state: Mutex<RunState>,
    /// What holds the process's place in its run's `processes` count (see
    /// [`crate::backend::Spawned`]); given back when it ends.
    place: Mutex<Option<Box<dyn Send>>>,
    exit: watch::Sender<Option<ExitStatus>>,
    /// The process's task while it waits to be spawned or driven by a join
    /// ([`super::sched`]).
    deferred: Mutex<Option<super::sched::Deferred>>,
    /// The limit that ended it, if one did (set before its status is published).
    limit_hit: OnceLock<crate::exit::LimitHit>,
    /// The value its target returned (`set-result`), if it set one.
    result: Mutex<Option<Kept>>,
}

/// A process's result as its host keeps it: the bytes with what they are charged against
/// `held`, or why they could not be kept.
pub(super) type Kept = Result<(Vec<u8>, super::limits::Charge), crate::error::ProcessError>;

impl ProcessCore {
    pub(super) fn new(identity: Vec<u32>) -> Arc<Self> {
        Arc::new(ProcessCore {
            identity,
            pid: OnceLock::new(),
            counted_in: OnceLock::new(),
            state: Mutex::new(RunState::Unstarted),
            place: Mutex::new(None),
            exit: watch::Sender::new(None),
            deferred: Mutex::new(None),
            limit_hit: OnceLock::new(),
            result: Mutex::new(None),
        })
    }

    /// The limit that ended the process, if one did.
    pub fn limit_hit(&self) -> Option<crate::exit::LimitHit> {
        self.limit_hit.get().copied()
    }

    /// Records that `hit` ended the process (before its end is published).
    pub fn record_limit(&self, hit: crate::exit::LimitHit) {
        let _ = self.limit_hit.set(hit);
    }

    /// Keeps `result` as the process's result (replacing an earlier one).
    pub(super) fn set_result(&self, result: Kept) {
        *lock(&self.result) = Some(result);
    }

    /// The process's result: its bytes once it has ended with exit code 0 and if it set
    /// one; the error that kept the host from keeping them.
    pub(super) fn result(&self) -> Result<Option<Vec<u8>>, crate::error::ProcessError> {
        if self.status() != Some(ExitStatus::SUCCESS) {
            return Ok(None);
        }
        match &*lock(&self.result) {
            None => Ok(None),
            Some(Ok((bytes, _))) => Ok(Some(bytes.clone())),
            Some(Err(e)) => Err(e.clone()),
        }
    }

    /// Takes the result's bytes as the process set them, whatever its status (for a
    /// native child to hand them to its parent).
    pub fn take_result(&self) -> Option<Vec<u8>> {
        match lock(&self.result).take() {
            Some(Ok((bytes, _))) => Some(bytes),
            _ => None,
        }
    }

    /// A core for a process that is already running (the main process, the library's
    /// root, or a native child process's parent).
    pub fn running(identity: Vec<u32>, pid: u64) -> Arc<Self> {
        let core = Self::new(identity);
        let _ = core.pid.set(pid);
        *lock(&core.state) = RunState::Starting;
        core
    }

    /// Keeps the process's task until it is spawned or a join drives it.
    pub(super) fn defer(&self, deferred: super::sched::Deferred) {
        *lock(&self.deferred) = Some(deferred);
    }

    /// The process's task, if it has not been spawned yet.
    pub(super) fn take_deferred(&self) -> Option<super::sched::Deferred> {
        lock(&self.deferred).take()
    }

    /// Records the pid the backend gave the process (before it runs).
    pub(super) fn set_pid(&self, pid: u64) {
        let _ = self.pid.set(pid);
    }

    /// Keeps what holds the process's place in its run until it ends.
    pub(super) fn hold_place(&self, place: Option<Box<dyn Send>>) {
        *lock(&self.place) = place;
    }

    pub fn identity(&self) -> &[u32] {
        &self.identity
    }

    pub fn pid(&self) -> Option<u64> {
        self.pid.get().copied()
    }

    pub fn status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    pub(super) fn started(&self) -> bool {
        !matches!(*lock(&self.state), RunState::Unstarted)
    }

    pub fn is_alive(&self) -> bool {
        self.status().is_none()
            && matches!(
                *lock(&self.state),
                RunState::Starting | RunState::Running(_)
            )
    }

    /// Delivers `sig` if the process is running; no effect otherwise (as signalling a
    /// process that has already ended).
    pub fn signal(&self, sig: Signal) {
        if let RunState::Running(control) = &*lock(&self.state) {
            control.signal(sig);
        }
    }

    /// Marks the process as parentless and ended by `SIGKILL` (a native child's view of a
    /// parent whose OS process has ended).
    pub fn parent_gone(&self) {
        self.publish(ExitStatus::Signaled(Signal::Kill));
    }

    /// Records how the process ended and wakes everyone waiting for it; later calls are
    /// ignored. Only [`finish`] and [`ProcessCore::parent_gone`] call it.
    fn publish(&self, status: ExitStatus) {
        if self.status().is_some() {
            return;
        }
        if let Some(counters) = self.counted_in.get() {
            for c in counters {
                c.fetch_sub(1, Ordering::Relaxed);
            }
        }
        drop(lock(&self.place).take());
        // Publish the status before leaving the running state, so that a process is never
        // seen as neither alive nor ended.
        self.exit.send_replace(Some(status));
        // Dropping the control here releases the backend's means of signalling.
        let control = std::mem::replace(&mut *lock(&self.state), RunState::Exited);
        drop(control);
    }

    /// Waits until the process has ended or `timeout` passed; returns its status if ended.
    pub async fn wait_exit(&self, timeout: Option<Duration>) -> Option<ExitStatus> {
        // Decided without a timer, so that it also works outside the scheduler.
        if let Some(status) = self.status() {
            return Some(status);
        }
        let mut rx = self.exit.subscribe();
        // A child whose task has not been spawned yet runs here, in the waiter's task.
        let mut helper = self.take_deferred().map(super::sched::Helper::new);
        let ended = async move {
            if let Some(helper) = helper.as_mut() {
                helper.run().await;
            }
            // The sender lives as long as `self`, so `wait_for` cannot fail here.
            rx.wait_for(Option::is_some).await.ok().and_then(|s| *s)
        };
        match timeout {
            None => ended.await,
            Some(t) => tokio::time::timeout(t, ended).await.ok().flatten(),
        }
    }
}

/// How a process knows its parent.
#[derive(Clone)]
pub(crate) struct ParentLink {
    pub core: Arc<ProcessCore>,
    pub name: String,
    pub daemon: bool,
}

/// What an ended process held of its run's objects, to be let go of before its end is
/// published.
pub(super) enum Holdings<'a> {
    /// Its own client, in this OS process.
    Here(&'a crate::sync::Client),
    /// The objects of OS process `pid` (its connections to the run's object server) and
    /// the share `token` it may not have claimed.
    Elsewhere {
        link: &'a Link,
        pid: u32,
        token: u64,
    },
}

/// Where every process ends, on every backend: it lets go of the objects it held (a lock
/// it owned is released, for the next owner to learn of; its posts are delivered), and
/// only then is `status` published to whoever joins or waits for it.
pub(super) async fn finish(core: &ProcessCore, status: ExitStatus, holdings: Holdings<'_>) {
    match holdings {
        Holdings::Here(client) => client.release().await,
        Holdings::Elsewhere { link, pid, token } => link.process_gone(pid, token).await,
    }
    core.publish(status);
}

/// Runs process `ctx` in this OS process from `entry` to its end: its guest code, then
/// the exit handler (its daemonic children terminated, the others joined), then
/// [`finish`]. A signal on `signals` ends both at once and gives the signal's status; as in
/// CPython, the process's children then run on as orphans (their `parent_process()` is no
/// longer alive) until they end or the run ends.
pub(crate) async fn supervise(
    ctx: Arc<ProcessCtx>,
    entry: Entry,
    mut signals: watch::Receiver<Option<Signal>>,
) -> ExitStatus {
    let run = async {
        let status = ctx.host().runner.clone().run(ctx.clone(), entry).await;
        ctx.exit_handler().await;
        status
    };
    let signalled = async {
        let received = signals.wait_for(Option::is_some).await.map(|s| *s);
        match received {
            Ok(sig) => sig.unwrap_or(Signal::Kill),
            // The sender is gone: nobody can signal this process any more.
            Err(_) => std::future::pending().await,
        }
    };
    let status = tokio::select! {
        biased;
        sig = signalled => ExitStatus::Signaled(sig),
        status = run => status,
    };
    if let Some(name) = ctx.announces_end() {
        ctx.emit(crate::events::ProcessEvent::Ended {
            name: name.to_string(),
            pid: ctx.core().pid().unwrap_or(0),
            status,
            limit: ctx.core().limit_hit(),
        });
    }
    finish(ctx.core(), status, Holdings::Here(ctx.client())).await;
    status
}
