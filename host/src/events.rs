//! Lifecycle events: what happened to the processes of a host's runs, for an embedder to
//! watch without polling ([`crate::Host::events`]) and for `tracing`.
//!
//! Every event is published once, in the host that owns the run: a process that runs in
//! another OS process (a native child's own children) sends its events there over the
//! run's object server, so that the stream is the same under both backends.

use crate::error::ProcessError;
use crate::exit::{ExitStatus, LimitHit, Signal};
use crate::lock;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// Something that happened to a process of one of the host's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessEvent {
    /// A process started: `name` with `pid`, a child of `parent` (`MainProcess` for the
    /// processes started from Rust, and for the children of a program's main process).
    /// A program's main process itself starts with `parent` empty.
    Started {
        /// The process's name.
        name: String,
        /// Its pid (virtual under `wasm`, the OS pid under `native`).
        pid: u64,
        /// Its parent's name.
        parent: String,
    },
    /// A start was refused after the process model's rules passed: by a limit
    /// (`limit-exceeded`) or because the backend could not start it (`host-failure`).
    StartFailed {
        /// The name of the process that did not start.
        name: String,
        /// The name of the process that tried to start it.
        parent: String,
        /// Why: the error `start` returned.
        error: ProcessError,
    },
    /// `terminate()` or `kill()` was called on a running process.
    Signalled {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u64,
        /// The signal.
        signal: Signal,
    },
    /// A process ended, and everyone waiting for it can see how.
    Ended {
        /// The process's name.
        name: String,
        /// Its pid.
        pid: u64,
        /// How it ended.
        status: ExitStatus,
        /// The limit that ended it, if one did.
        limit: Option<LimitHit>,
    },
}

impl ProcessEvent {
    /// The name of the process the event is about.
    pub fn name(&self) -> &str {
        match self {
            ProcessEvent::Started { name, .. }
            | ProcessEvent::StartFailed { name, .. }
            | ProcessEvent::Signalled { name, .. }
            | ProcessEvent::Ended { name, .. } => name,
        }
    }

    /// Emits the event to `tracing` (target `wasmproc`, level INFO; a refused start at
    /// WARN).
    fn trace(&self) {
        match self {
            ProcessEvent::Started { name, pid, parent } => {
                tracing::info!(target: "wasmproc", name, pid, parent, "process started");
            }
            ProcessEvent::StartFailed {
                name,
                parent,
                error,
            } => {
                tracing::warn!(
                    target: "wasmproc",
                    name,
                    parent,
                    kind = error.kind.wit_name(),
                    error = %error.message,
                    "process start refused"
                );
            }
            ProcessEvent::Signalled { name, pid, signal } => {
                tracing::info!(
                    target: "wasmproc",
                    name,
                    pid,
                    signal = signal.name(),
                    "process signalled"
                );
            }
            ProcessEvent::Ended {
                name,
                pid,
                status,
                limit,
            } => {
                tracing::info!(
                    target: "wasmproc",
                    name,
                    pid,
                    exitcode = status.exitcode(),
                    limit = limit.map(|l| l.to_string()),
                    "process ended"
                );
            }
        }
    }
}

/// Where a host's events go: to `tracing`, and to every live [`Events`] subscription.
#[derive(Default)]
pub(crate) struct EventBus {
    subscribers: Mutex<Vec<Weak<Queue>>>,
    /// How many subscriptions there are (checked without the lock).
    count: AtomicUsize,
}

impl EventBus {
    /// Publishes `event`.
    pub fn publish(&self, event: ProcessEvent) {
        event.trace();
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| match s.upgrade() {
            Some(queue) => {
                queue.push(event.clone());
                true
            }
            None => false,
        });
        self.count.store(subscribers.len(), Ordering::Relaxed);
    }

    /// A new subscription that keeps at most `capacity` events it has not received.
    pub fn subscribe(self: &Arc<Self>, capacity: usize) -> Events {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState {
                slots: VecDeque::new(),
                events: 0,
                closed: false,
            }),
            capacity: capacity.max(1),
            ready: Condvar::new(),
            notify: tokio::sync::Notify::new(),
        });
        let mut subscribers = lock(&self.subscribers);
        subscribers.push(Arc::downgrade(&queue));
        self.count.store(subscribers.len(), Ordering::Relaxed);
        Events {
            queue,
            _bus: Arc::downgrade(self),
        }
    }

    /// Ends every subscription: once they have received what was published, they are
    /// [`EventsError::Closed`].
    pub fn close(&self) {
        for queue in lock(&self.subscribers)
            .drain(..)
            .filter_map(|w| w.upgrade())
        {
            lock(&queue.state).closed = true;
            queue.ready.notify_all();
            queue.notify.notify_one();
        }
        self.count.store(0, Ordering::Relaxed);
    }
}

/// One subscription's events, not received yet.
struct Queue {
    state: Mutex<QueueState>,
    capacity: usize,
    /// Wakes a blocking receiver.
    ready: Condvar,
    /// Wakes an async receiver.
    notify: tokio::sync::Notify,
}

struct QueueState {
    /// The events not received, and where events were dropped between them.
    slots: VecDeque<Slot>,
    /// How many of `slots` are events (at most the capacity).
    events: usize,
    closed: bool,
}

enum Slot {
    Event(ProcessEvent),
    /// This many events were dropped here because the queue was full.
    Missed(u64),
}

impl Queue {
    fn push(&self, event: ProcessEvent) {
        let mut state = lock(&self.state);
        if state.events >= self.capacity {
            match state.slots.back_mut() {
                Some(Slot::Missed(n)) => *n += 1,
                _ => state.slots.push_back(Slot::Missed(1)),
            }
            return;
        }
        state.slots.push_back(Slot::Event(event));
        state.events += 1;
        drop(state);
        self.ready.notify_one();
        self.notify.notify_one();
    }

    /// The next event, the count of missed ones where they were missed, or `Closed`; none
    /// when there is nothing to receive yet.
    fn take(&self, state: &mut QueueState) -> Option<Result<ProcessEvent, EventsError>> {
        match state.slots.pop_front() {
            Some(Slot::Event(event)) => {
                state.events -= 1;
                Some(Ok(event))
            }
            Some(Slot::Missed(n)) => Some(Err(EventsError::Missed(n))),
            None => state.closed.then_some(Err(EventsError::Closed)),
        }
    }
}

/// Why [`Events`] gave no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    /// This many events were dropped because the subscription held its capacity of events
    /// not received; the next receive goes on with the events after them.
    #[error("{0} events were missed: the subscription was full")]
    Missed(u64),
    /// No event came within the timeout.
    #[error("no event within the timeout")]
    Timeout,
    /// The host was dropped and every event was received.
    #[error("the host is gone and every event was received")]
    Closed,
}

/// A subscription to a host's [`ProcessEvent`]s ([`crate::Host::events`]), in the order the
/// host published them. It keeps at most its capacity of events not received: past it,
/// events are dropped and the next receive reports how many ([`EventsError::Missed`]), so a
/// subscriber that does not keep up never costs the host unbounded memory.
pub struct Events {
    queue: Arc<Queue>,
    _bus: Weak<EventBus>,
}

impl Events {
    /// The next event, waiting for it at most `timeout` (none: until one comes or the
    /// host is gone). Blocks the calling thread, also in async code, which should use
    /// [`Events::recv_async`].
    ///
    /// # Errors
    /// [`EventsError::Missed`] after events were dropped; [`EventsError::Timeout`];
    /// [`EventsError::Closed`] once the host is gone and every event was received.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<ProcessEvent, EventsError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = lock(&self.queue.state);
        loop {
            if let Some(r) = self.queue.take(&mut state) {
                return r;
            }
            state = match deadline {
                None => self
                    .queue
                    .ready
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(EventsError::Timeout);
                    }
                    self.queue
                        .ready
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// As [`Events::recv`]; [`EventsError::Timeout`] when none is waiting.
    pub fn try_recv(&mut self) -> Result<ProcessEvent, EventsError> {
        self.recv(Some(Duration::ZERO))
    }

    /// [`Events::recv`] without a timeout, for async code (on any runtime).
    ///
    /// # Errors
    /// [`EventsError::Missed`]; [`EventsError::Closed`].
    pub async fn recv_async(&mut self) -> Result<ProcessEvent, EventsError> {
        loop {
            if let Some(r) = self.queue.take(&mut lock(&self.queue.state)) {
                return r;
            }
            // A push between the look above and here leaves a permit: no wake-up is lost.
            self.queue.notify.notified().await;
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("capacity", &self.queue.capacity)
            .finish_non_exhaustive()
    }
}
