//! When and where the task of a `wasm` process starts running (and the task that awaits the
//! end of a native child forked by the fork server, which is deferred the same way).
//!
//! Every process is a task on the host's multi-threaded tokio runtime. A child started by a
//! running process is not handed to the runtime at once: it is kept until the end of the
//! current poll of the process that started it (which ends as soon as that process waits
//! for anything, or at its next scheduler tick), and then spawned. If the parent joins the
//! child before that, the join drives the child's task itself, on the parent's own thread,
//! instead of waiting for another task to run it.
//!
//! Why: a start followed by a join is the commonest pattern there is, and on the runtime it
//! is a ping-pong between two tasks. Tokio lets a worker run a task it has just woken right
//! away only three times in a row; the fourth goes to its run queue and wakes a sleeping
//! worker to steal it. Waking that worker and moving the processes between cores costs a
//! large share of a start+join of a no-op child (BENCHMARKS.md, "The machine: wake-ups across cores").
//!
//! Nothing is lost by the delay: a child started by a busy process sat in its worker's
//! LIFO slot until that process yielded before too, since a task in the LIFO slot cannot be
//! stolen. A join that times out, or is cancelled (its process is terminated), spawns the
//! child's task on the spot, which polls it again at once, so the wakers the child's
//! futures had given the joiner's task are replaced by its own.

use super::core::ProcessCore;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::runtime::Handle;

/// The whole life of one process.
pub(crate) type ProcessFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A process whose task has not been spawned yet.
pub(crate) struct Deferred {
    fut: ProcessFuture,
    runtime: Handle,
}

impl Deferred {
    fn spawn(self) {
        drop(self.runtime.spawn(self.fut));
    }
}

thread_local! {
    /// The children started during the poll of the process that runs on this thread now
    /// (none outside a process's poll).
    static STARTED: RefCell<Option<Vec<Arc<ProcessCore>>>> = const { RefCell::new(None) };
}

/// Starts `fut`, the life of the process `core`, on `runtime`: at the end of the current
/// poll of the process calling this (unless a join takes it over first), or at once when
/// called from outside a process (the Rust library, or the code that starts a native child).
pub(crate) fn start(
    core: &Arc<ProcessCore>,
    runtime: &Handle,
    fut: impl Future<Output = ()> + Send + 'static,
) {
    let fut: ProcessFuture = Box::pin(flushing(fut));
    let inside = STARTED.with_borrow_mut(|started| match started {
        Some(list) => {
            list.push(core.clone());
            true
        }
        None => false,
    });
    if inside {
        core.defer(Deferred {
            fut,
            runtime: runtime.clone(),
        });
    } else {
        drop(runtime.spawn(fut));
    }
}

/// `fut` (a process's life), which spawns the children it starts at the end of each of its
/// polls.
pub(crate) fn flushing<F: Future>(fut: F) -> Flushing<F> {
    Flushing {
        inner: Box::pin(fut),
    }
}

/// See [`flushing`].
pub(crate) struct Flushing<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Flushing<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = STARTED.with_borrow_mut(|started| started.replace(Vec::new()));
        // Restores the enclosing poll's list and spawns what this poll started, also when
        // the poll panics.
        let _flush = Flush { outer: Some(outer) };
        self.inner.as_mut().poll(cx)
    }
}

struct Flush {
    outer: Option<Option<Vec<Arc<ProcessCore>>>>,
}

impl Drop for Flush {
    fn drop(&mut self) {
        let outer = self.outer.take().flatten();
        let mine = STARTED.with_borrow_mut(|started| std::mem::replace(started, outer));
        for core in mine.into_iter().flatten() {
            // Taken already if the process joined it during the poll.
            if let Some(deferred) = core.take_deferred() {
                deferred.spawn();
            }
        }
    }
}

/// A process's task driven by the one waiting for it; see the module's documentation.
pub(crate) struct Helper {
    deferred: Option<Deferred>,
}

impl Helper {
    pub fn new(deferred: Deferred) -> Self {
        Helper {
            deferred: Some(deferred),
        }
    }

    /// Runs the process until it has ended.
    pub async fn run(&mut self) {
        std::future::poll_fn(|cx| match self.deferred.as_mut() {
            Some(d) => match d.fut.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.deferred = None;
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Ready(()),
        })
        .await
    }
}

impl Drop for Helper {
    /// The wait is over before the process is: it runs on as a task of its own.
    fn drop(&mut self) {
        if let Some(d) = self.deferred.take() {
            d.spawn();
        }
    }
}
