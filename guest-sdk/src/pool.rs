//! A pool of worker processes, as `multiprocessing.Pool`.
//!
//! Each worker is a child process running the hidden target `__wasmproc_pool_worker` with
//! its own inbox queue of tasks and the pool's one results queue. The parent keeps every
//! task until its result arrives, dispatches at most [`WINDOW`] tasks to a worker at a time
//! (the rest wait in the parent; each worker's share goes in with one `put_many`), and
//! drives the pool — dispatching, collecting results, replacing workers that ended, giving
//! an idle worker tasks from a busy one's inbox — inside every [`Pool`], [`AsyncResult`]
//! and iterator method. There is no background thread.
//!
//! A worker takes one task at a time from its inbox, so that every task it has not started
//! stays there, where the parent can give it to a worker left idle: no task waits behind a
//! long one while another worker is free, as with CPython's one shared task queue. (A task
//! a worker has taken cannot be given back: the worker does nothing else until it has run
//! it.) The exception is a pool of one worker, which takes its whole inbox in one
//! `get_many`: there is no other worker to give those tasks to. A worker posts each result
//! (`Queue::post`), so that under `native` a task costs one round trip to the run's root
//! host (the take, which carries the posts) instead of two. It runs its tasks in order and
//! answers each before starting the next, so when it ends the oldest task it took and did
//! not answer is the one it was running.
//!
//! A task is one chunk of calls of one function. Inbox messages are `[1] id func count
//! args...` (postcard varints and strings, then each call's postcard-encoded arguments) or
//! `[0]` (stop). Results are `[1] id results...`, `[0] id message` (failed) or `[2] id
//! message` (failed, and the worker ends: a panic).

use crate::__private::bindings::wasmproc::process::sync as sync_host;
use crate::sync::serialize_error;
use crate::{Error, ErrorKind, Process, Queue, Sentinel, active_children, cpu_count, wait};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The name of the hidden target every pool worker runs.
pub const WORKER_TARGET: &str = "__wasmproc_pool_worker";

/// The most tasks (chunks) dispatched to one worker and not yet answered: enough that a
/// worker finishing small tasks rarely waits for the parent to hand out more. `Pool.map`
/// with chunksize 1 under `wasm`, workers taking one task at a time: a window of 2 gave
/// 85,000 tasks per second, 16 gave 400,000 and more. The work stays shared out when tasks
/// differ in length because the tasks a worker has not started wait in its inbox, where a
/// worker left idle is given some of them (see `PoolState::rebalance`).
const WINDOW: usize = 128;

// ---------------------------------------------------------------------------------------
// Typed pool functions
// ---------------------------------------------------------------------------------------

/// A function a [`Pool`] can run, by name, with its argument and result types; made by
/// [`pool_fn!`](crate::pool_fn) from a function registered in
/// [`targets!`](crate::targets) after `pool:`.
///
/// `Args` is the argument of a one-parameter function (`fn(A) -> R` gives
/// `PoolFn<A, R>`), the tuple of the arguments otherwise (`fn(A, B) -> R` gives
/// `PoolFn<(A, B), R>`, `fn() -> R` gives `PoolFn<(), R>`): what [`Pool::apply`] takes and
/// what the items of [`Pool::map`] are.
pub struct PoolFn<Args, R> {
    name: &'static str,
    _types: PhantomData<fn(Args) -> R>,
}

impl<Args, R> Clone for PoolFn<Args, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Args, R> Copy for PoolFn<Args, R> {}

impl<Args, R> fmt::Debug for PoolFn<Args, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolFn({})", self.name)
    }
}

impl<Args, R> PoolFn<Args, R> {
    /// The function's registered name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Used by [`pool_fn!`](crate::pool_fn); `f` only fixes the types.
    #[doc(hidden)]
    pub fn __new<M, F>(name: &'static str, _f: F) -> PoolFn<Args, R>
    where
        F: PoolCallable<M, Args = Args, Output = R>,
    {
        PoolFn {
            name,
            _types: PhantomData,
        }
    }
}

/// A function the pool worker can call with postcard-encoded arguments: `fn() -> R` up to
/// `fn(A, B, C, D) -> R`. `Marker` only tells the impls apart.
#[doc(hidden)]
pub trait PoolCallable<Marker> {
    /// What one call takes: the argument, or the tuple of the arguments.
    type Args;
    /// What one call returns.
    type Output;
    /// Decodes one call's arguments from the front of `input` (advancing it), calls the
    /// function and appends its encoded result to `out`.
    fn call_erased(&self, name: &str, input: &mut &[u8], out: &mut Vec<u8>) -> Result<(), String>;
}

fn decode_args<T: DeserializeOwned>(name: &str, input: &mut &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(input).map_err(|e| {
        format!(
            "cannot decode the arguments of pool function '{name}' as {}: {e}",
            std::any::type_name::<T>()
        )
    })?;
    *input = rest;
    Ok(value)
}

fn encode_output<R: Serialize>(name: &str, value: &R, out: &mut Vec<u8>) -> Result<(), String> {
    let buf = std::mem::take(out);
    *out = postcard::to_extend(value, buf)
        .map_err(|e| format!("cannot serialise the result of pool function '{name}': {e}"))?;
    Ok(())
}

macro_rules! pool_callable {
    ($args:ty; $($a:ident),*) => {
        impl<F, R, $($a),*> PoolCallable<fn($($a),*) -> R> for F
        where
            F: Fn($($a),*) -> R,
            R: Serialize,
            $($a: DeserializeOwned,)*
        {
            type Args = $args;
            type Output = R;

            #[allow(non_snake_case, reason = "the tuple's fields are named by their types")]
            fn call_erased(
                &self,
                name: &str,
                input: &mut &[u8],
                out: &mut Vec<u8>,
            ) -> Result<(), String> {
                let ($($a,)*) = decode_args::<($($a,)*)>(name, input)?;
                let result = self($($a),*);
                encode_output(name, &result, out)
            }
        }
    };
}

pool_callable!((); );
pool_callable!(A; A);
pool_callable!((A, B); A, B);
pool_callable!((A, B, C); A, B, C);
pool_callable!((A, B, C, D); A, B, C, D);

/// The dispatcher [`targets!`](crate::targets) generates: calls the pool function `name`
/// (see [`PoolCallable::call_erased`]); `None` when there is no such function.
#[doc(hidden)]
pub type Dispatch = fn(&str, &mut &[u8], &mut Vec<u8>) -> Option<Result<(), String>>;

thread_local! {
    /// The program's pool functions by name, set when an instance is entered.
    static DISPATCH: std::cell::Cell<Option<Dispatch>> = const { std::cell::Cell::new(None) };
}

/// Makes the program's pool functions callable by name in this instance ([`dispatch`]).
#[doc(hidden)]
pub fn set_dispatch(dispatch: Dispatch) {
    DISPATCH.with(|d| d.set(Some(dispatch)));
}

/// The program's pool functions by name (none before [`set_dispatch`]).
pub(crate) fn dispatch() -> Option<Dispatch> {
    DISPATCH.with(std::cell::Cell::get)
}

/// The target names [`targets!`](crate::targets) registers: `targets`, plus the pool
/// worker's when there are pool functions.
#[doc(hidden)]
pub fn target_list(targets: &[&str], pool: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = targets
        .iter()
        .map(|t| crate::process::target_name(t).to_string())
        .collect();
    if !pool.is_empty() {
        names.push(WORKER_TARGET.to_string());
    }
    names
}

// ---------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The start of a task message; the calls' encoded arguments follow.
fn task_header(id: u64, func: &str, count: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + func.len());
    m.push(1);
    push_varint(&mut m, id);
    push_varint(&mut m, func.len() as u64);
    m.extend_from_slice(func.as_bytes());
    push_varint(&mut m, u64::from(count));
    m
}

const STOP: &[u8] = &[0];

/// The id of a task message, `None` for a stop message.
fn task_id(msg: &[u8]) -> Option<u64> {
    match msg.split_first() {
        Some((1, rest)) => postcard::take_from_bytes::<u64>(rest)
            .ok()
            .map(|(id, _)| id),
        _ => None,
    }
}

/// A failed task's result; `last`: the worker ends after it (a panic), so that the tasks
/// it took with it were never started.
fn failure_message(id: u64, message: &str, last: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(12 + message.len());
    m.push(if last { 2 } else { 0 });
    push_varint(&mut m, id);
    m.extend_from_slice(message.as_bytes());
    m
}

// ---------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------

thread_local! {
    /// In a worker: the results queue and the id of the task running now.
    static RUNNING: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

fn current_name() -> String {
    crate::current_process().name().unwrap_or_default()
}

/// A worker's arguments: its inbox, the results queue, its `maxtasksperchild` (0: none),
/// whether it is the pool's only worker, and the initializer's call (empty: none).
type WorkerArgs = (Queue<Vec<u8>>, Queue<Vec<u8>>, u64, bool, Vec<u8>);

/// The pool worker target: runs the tasks of its inbox until a stop message or its
/// `maxtasksperchild`, putting each task's results on the results queue.
#[doc(hidden)]
pub fn run_worker(args: &[u8], dispatch: Dispatch) -> Result<(), String> {
    let (inbox, results, maxtasks, alone, init): WorkerArgs =
        postcard::from_bytes(args).map_err(|e| format!("bad pool worker arguments: {e}"))?;
    std::panic::set_hook(Box::new(|info| {
        if let Some((results, id)) = RUNNING.get() {
            let message = format!("task failed in worker {}: {info}", current_name());
            let _ = sync_host::queue_put(results, &failure_message(id, &message, true), true, None);
        }
        crate::process::child_panic(info)
    }));
    let mut out = Vec::new();
    if !init.is_empty() {
        // The initializer: one call, before any task (its result is dropped). A failure
        // ends the worker, which the pool replaces, as CPython's does.
        let ((_, func, _), mut input) = postcard::take_from_bytes::<(u64, &str, u32)>(&init[1..])
            .map_err(|e| format!("bad pool initializer: {e}"))?;
        match dispatch(func, &mut input, &mut out) {
            Some(Ok(())) => out.clear(),
            Some(Err(e)) => return Err(format!("the pool initializer {func} failed: {e}")),
            None => {
                return Err(format!(
                    "the program has no pool function named '{func}' (register the \
                     initializer with targets![...; pool: {func}])"
                ));
            }
        }
    }
    let mut done = 0u64;
    'tasks: while maxtasks == 0 || done < maxtasks {
        // One task, so that those behind it stay in the inbox, where an idle worker can be
        // given them; the pool's only worker takes every task waiting (the parent never
        // gives a worker more than `WINDOW`, nor more than its `maxtasksperchild`).
        let batch = if alone {
            inbox.get_many_bytes(WINDOW, None)
        } else {
            inbox.get_bytes().map(|msg| vec![msg])
        }
        .map_err(|e| e.to_string())?;
        for msg in batch {
            let Some((1, rest)) = msg.split_first() else {
                break 'tasks;
            };
            let ((id, func, count), mut input) =
                postcard::take_from_bytes::<(u64, &str, u32)>(rest)
                    .map_err(|e| format!("bad pool task: {e}"))?;
            RUNNING.set(Some((results.handle(), id)));
            out.clear();
            out.push(1);
            push_varint(&mut out, id);
            let mut failure = None;
            for _ in 0..count {
                match dispatch(func, &mut input, &mut out) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    None => {
                        failure = Some(format!(
                            "the program has no pool function named '{func}' (register it \
                             with targets![...; pool: {func}])"
                        ));
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                out = failure_message(
                    id,
                    &format!("task failed in worker {}: {e}", current_name()),
                    false,
                );
            }
            // Posted: a native worker sends it with its next call, the take of its next
            // task (or within a millisecond).
            results.post_bytes(&out).map_err(|e| e.to_string())?;
            RUNNING.set(None);
            done += 1;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The parent's state
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    Closed,
    Terminated,
}

struct Task {
    job: u64,
    chunk: usize,
    /// The complete inbox message, kept to dispatch again if the worker ends first.
    msg: Vec<u8>,
    worker: Option<u64>,
}

enum Outcome {
    /// The result message and where the encoded results start in it.
    Done(Vec<u8>, usize),
    Failed(Error),
}

struct Job {
    /// Per chunk: how many calls it holds and, once known, its outcome.
    chunks: Vec<(u32, Option<Outcome>)>,
    remaining: usize,
    /// Chunks in completion order (kept for `imap_unordered` only).
    completed: Option<VecDeque<usize>>,
    /// Nobody will read the outcomes: drop the job once its tasks are done.
    abandoned: bool,
    /// The job is done at its first failed chunk, as CPython's `map_async` (its other
    /// chunks still run, and their outcomes are dropped).
    early: bool,
    /// The chunk that failed first, in completion order.
    failed_first: Option<usize>,
    /// What to run in the caller once every chunk has its outcome: made from the job, it
    /// gives the call of the user's callback (run once the pool's state is no longer
    /// borrowed, see [`PoolState::fire`]).
    on_done: Option<OnDone>,
}

impl Job {
    /// Whether the job's value is known: every chunk has its outcome, or (an early job)
    /// one failed.
    fn done(&self) -> bool {
        self.remaining == 0 || (self.early && self.failed_first.is_some())
    }
}

/// Makes the call of a job's callback from the job's outcomes.
type OnDone = Box<dyn FnOnce(&Job) -> Box<dyn FnOnce()>>;

struct Worker {
    id: u64,
    name: String,
    process: Process,
    sentinel: Sentinel,
    inbox: Queue<Vec<u8>>,
    /// Tasks dispatched and not answered, in dispatch order.
    outstanding: VecDeque<u64>,
    dispatched: usize,
    stop_sent: bool,
    /// The worker answered the task it was running as its last (it panicked).
    answered_last: bool,
}

struct PoolState {
    processes: usize,
    maxtasks: Option<usize>,
    results: Queue<Vec<u8>>,
    workers: Vec<Worker>,
    pending: VecDeque<u64>,
    tasks: HashMap<u64, Task>,
    jobs: HashMap<u64, Job>,
    state: RunState,
    next_task: u64,
    next_job: u64,
    next_worker: u64,
    /// The pool's initializer call.
    init: Option<InitCall>,
    /// Callbacks of finished jobs, waiting to be run by the caller (see [`run_callbacks`]).
    fire: Vec<Box<dyn FnOnce()>>,
}

fn not_running() -> Error {
    Error::new(ErrorKind::InvalidState, "Pool not running")
}

impl PoolState {
    fn start_worker(&mut self) -> Result<(), Error> {
        let inbox = Queue::<Vec<u8>>::new()?;
        let maxtasks = self.maxtasks.map_or(0, |m| m as u64);
        // The pool's one worker takes its inbox in batches: no other could be given them.
        let alone = self.processes == 1;
        let process = Process::builder(WORKER_TARGET)
            .args(&(
                &inbox,
                &self.results,
                maxtasks,
                alone,
                InitArg(self.init.as_ref()),
            ))?
            .daemon(true)
            .build()
            .map_err(|e| {
                if e.kind() == ErrorKind::UnknownTarget {
                    Error::new(
                        ErrorKind::UnknownTarget,
                        "the program registers no pool functions: list them in its \
                         targets![...; pool: f, g]",
                    )
                } else {
                    e
                }
            })?;
        process.start()?;
        let sentinel = process.sentinel()?;
        let name = process.name()?;
        self.next_worker += 1;
        self.workers.push(Worker {
            id: self.next_worker,
            name,
            process,
            sentinel,
            inbox,
            outstanding: VecDeque::new(),
            dispatched: 0,
            stop_sent: false,
            answered_last: false,
        });
        Ok(())
    }

    /// Queues a job of task messages built by `build(first_task_id)`; dispatches what fits.
    fn submit(
        &mut self,
        msgs: Vec<(u32, Vec<u8>)>,
        unordered: bool,
        on_done: Option<OnDone>,
    ) -> Result<u64, Error> {
        if self.state != RunState::Running {
            return Err(not_running());
        }
        self.next_job += 1;
        let job = self.next_job;
        let mut chunks = Vec::with_capacity(msgs.len());
        for (chunk, (count, msg)) in msgs.into_iter().enumerate() {
            let id = task_id(&msg).expect("a task message");
            debug_assert_eq!(id, self.next_task + 1);
            self.next_task = id;
            chunks.push((count, None));
            self.tasks.insert(
                id,
                Task {
                    job,
                    chunk,
                    msg,
                    worker: None,
                },
            );
            self.pending.push_back(id);
        }
        self.jobs.insert(
            job,
            Job {
                remaining: chunks.len(),
                chunks,
                completed: unordered.then(VecDeque::new),
                abandoned: false,
                early: false,
                failed_first: None,
                on_done,
            },
        );
        self.dispatch()?;
        Ok(job)
    }

    /// Gives pending tasks to workers with room in their window, one each in turn; after
    /// `close`, tells idle workers to stop once nothing is pending.
    fn dispatch(&mut self) -> Result<(), Error> {
        // Who gets which, one each in turn while they have room...
        let mut given: Vec<Vec<u64>> = vec![Vec::new(); self.workers.len()];
        while !self.pending.is_empty() {
            let mut progressed = false;
            for (w, ids) in self.workers.iter().zip(&mut given) {
                if w.stop_sent
                    || w.outstanding.len() + ids.len() >= WINDOW
                    || self.maxtasks.is_some_and(|m| w.dispatched + ids.len() >= m)
                {
                    continue;
                }
                let Some(id) = self.pending.pop_front() else {
                    break;
                };
                progressed = true;
                // (A task that ended while pending, failed with its worker, is skipped.)
                if self.tasks.contains_key(&id) {
                    ids.push(id);
                }
            }
            if !progressed {
                break;
            }
        }
        // ...then each worker's in one call, so that it wakes to find them all.
        let mut failure = None;
        let mut back = Vec::new();
        for (w, ids) in self.workers.iter_mut().zip(given) {
            if ids.is_empty() {
                continue;
            }
            if failure.is_some() {
                back.extend(ids);
                continue;
            }
            let msgs: Vec<Vec<u8>> = ids
                .iter()
                .map(|id| self.tasks.get(id).map_or_else(Vec::new, |t| t.msg.clone()))
                .collect();
            let appended = match w.inbox.put_many_bytes(&msgs) {
                Ok(n) => n,
                Err(e) => {
                    failure = Some(e);
                    0
                }
            };
            for (i, id) in ids.into_iter().enumerate() {
                match self.tasks.get_mut(&id) {
                    Some(task) if i < appended => {
                        task.worker = Some(w.id);
                        w.outstanding.push_back(id);
                        w.dispatched += 1;
                    }
                    Some(_) => back.push(id),
                    None => {}
                }
            }
        }
        for id in back.into_iter().rev() {
            self.pending.push_front(id);
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if self.pending.is_empty() {
            self.rebalance()?;
        }
        if self.state == RunState::Closed && self.pending.is_empty() {
            for w in &mut self.workers {
                if !w.stop_sent && w.outstanding.is_empty() {
                    w.inbox.put_bytes(STOP)?;
                    w.stop_sent = true;
                }
            }
        }
        Ok(())
    }

    /// With nothing pending: gives each idle worker half the tasks still waiting in the
    /// inbox of the worker with the most unanswered (of those with any left in their inbox),
    /// so that tasks queued behind a long one do not wait for it while a worker is free.
    /// (A worker takes one task at a time, so its inbox holds every task it has not
    /// started; a pool's only worker, which takes batches, has no idle worker beside it.)
    fn rebalance(&mut self) -> Result<(), Error> {
        loop {
            let maxtasks = self.maxtasks;
            let Some(idle) = self.workers.iter().position(|w| {
                !w.stop_sent
                    && w.outstanding.is_empty()
                    && maxtasks.is_none_or(|m| w.dispatched < m)
            }) else {
                return Ok(());
            };
            let mut busiest: Vec<usize> = (0..self.workers.len())
                .filter(|&i| i != idle && self.workers[i].outstanding.len() >= 2)
                .collect();
            busiest.sort_by_key(|&i| std::cmp::Reverse(self.workers[i].outstanding.len()));
            let room = maxtasks.map_or(usize::MAX, |m| m - self.workers[idle].dispatched);
            let mut moved = 0;
            for busy in busiest {
                moved = self.move_tasks(busy, idle, room)?;
                if moved > 0 {
                    break;
                }
            }
            if moved == 0 {
                return Ok(());
            }
        }
    }

    /// Moves up to half of worker `busy`'s unanswered tasks (at most `room`) that are
    /// still in its inbox to worker `idle`'s; how many.
    fn move_tasks(&mut self, busy: usize, idle: usize, room: usize) -> Result<usize, Error> {
        let wanted = (self.workers[busy].outstanding.len() / 2).min(room);
        let mut moved = 0;
        while moved < wanted {
            let msg = match self.workers[busy].inbox.get_bytes_nowait() {
                Ok(msg) => msg,
                Err(e) if e.kind() == ErrorKind::Empty => break,
                Err(e) => return Err(e),
            };
            let Some(id) = task_id(&msg) else {
                continue;
            };
            let from = &mut self.workers[busy];
            if let Some(pos) = from.outstanding.iter().position(|&t| t == id) {
                from.outstanding.remove(pos);
                from.dispatched -= 1;
            }
            let to = &mut self.workers[idle];
            let Some(task) = self.tasks.get_mut(&id) else {
                continue;
            };
            if let Err(e) = to.inbox.put_bytes(&msg) {
                task.worker = None;
                self.pending.push_front(id);
                return Err(e);
            }
            task.worker = Some(to.id);
            to.outstanding.push_back(id);
            to.dispatched += 1;
            moved += 1;
        }
        Ok(moved)
    }

    /// Takes every result waiting on the results queue.
    fn collect(&mut self) -> Result<(), Error> {
        loop {
            // Many in one call: under `native` a batch of results comes in at once.
            match sync_host::queue_get_many(self.results.handle(), 1024, false, None) {
                Ok(msgs) => {
                    for msg in msgs {
                        self.on_result(msg);
                    }
                }
                Err(e) => {
                    let e = Error::from(e);
                    return if e.kind() == ErrorKind::Empty {
                        Ok(())
                    } else {
                        Err(e)
                    };
                }
            }
        }
    }

    fn on_result(&mut self, msg: Vec<u8>) {
        let Some((&flag, rest)) = msg.split_first() else {
            return;
        };
        let Ok((id, body)) = postcard::take_from_bytes::<u64>(rest) else {
            return;
        };
        let Some(task) = self.tasks.remove(&id) else {
            return;
        };
        if let Some(wid) = task.worker
            && let Some(w) = self.workers.iter_mut().find(|w| w.id == wid)
            && let Some(pos) = w.outstanding.iter().position(|&t| t == id)
        {
            w.outstanding.remove(pos);
            w.answered_last |= flag == 2;
        }
        let outcome = if flag == 1 {
            let start = msg.len() - body.len();
            Outcome::Done(msg, start)
        } else {
            Outcome::Failed(Error::new(
                ErrorKind::TaskFailed,
                String::from_utf8_lossy(body).into_owned(),
            ))
        };
        self.finish(&task, outcome);
    }

    fn finish(&mut self, task: &Task, outcome: Outcome) {
        let Some(job) = self.jobs.get_mut(&task.job) else {
            return;
        };
        job.remaining -= 1;
        if job.abandoned && job.on_done.is_none() {
            if job.remaining == 0 {
                self.jobs.remove(&task.job);
            }
            return;
        }
        if matches!(outcome, Outcome::Failed(_)) && job.failed_first.is_none() {
            job.failed_first = Some(task.chunk);
        }
        job.chunks[task.chunk].1 = Some(outcome);
        if let Some(completed) = &mut job.completed {
            completed.push_back(task.chunk);
        }
        if job.done()
            && let Some(on_done) = job.on_done.take()
        {
            self.fire.push(on_done(job));
        }
        if job.remaining == 0 && job.abandoned {
            self.jobs.remove(&task.job);
        }
    }

    fn fail(&mut self, id: u64, message: &str) {
        if let Some(task) = self.tasks.remove(&id) {
            self.finish(
                &task,
                Outcome::Failed(Error::new(ErrorKind::TaskFailed, message)),
            );
        }
    }

    /// Forgets a worker that ended: of the tasks it had not answered (its results are
    /// collected first), the oldest it had taken from its inbox is the one it was running,
    /// and fails (unless the worker answered that one itself, as a panic does); the rest,
    /// taken with it but not started or still in the inbox, go back to pending. (A worker
    /// runs its tasks in the order given and answers each before starting the next.)
    fn reap(&mut self, index: usize) -> Result<(), Error> {
        let w = self.workers.remove(index);
        let code = w.process.exitcode()?;
        let mut back = HashSet::new();
        loop {
            match w.inbox.get_bytes_nowait() {
                Ok(msg) => {
                    if let Some(id) = task_id(&msg) {
                        back.insert(id);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Empty => break,
                Err(e) => return Err(e),
            }
        }
        let message = format!(
            "worker {} ended with exitcode {} while running the task",
            w.name,
            code.map_or_else(|| "None".to_string(), |c| c.to_string())
        );
        let mut requeue = Vec::new();
        let mut running = !w.answered_last;
        for &id in &w.outstanding {
            if running && !back.contains(&id) {
                self.fail(id, &message);
                running = false;
            } else {
                requeue.push(id);
            }
        }
        for id in requeue.into_iter().rev() {
            if let Some(task) = self.tasks.get_mut(&id) {
                task.worker = None;
                self.pending.push_front(id);
            }
        }
        Ok(())
    }

    /// Starts workers up to the pool's size while it runs, or while work is left after
    /// `close`.
    fn replenish(&mut self) -> Result<(), Error> {
        let wanted = match self.state {
            RunState::Running => true,
            RunState::Closed => !self.pending.is_empty(),
            RunState::Terminated => false,
        };
        while wanted && self.workers.len() < self.processes {
            self.start_worker()?;
        }
        Ok(())
    }

    /// One round: dispatch, wait up to `timeout` for a result or a worker's end, collect
    /// results, reap ended workers, start replacements, dispatch again.
    fn pump(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.dispatch()?;
        // Results already waiting need no wait (a cheap call); a worker that ended is
        // noticed by the first round that finds none.
        let before = self.tasks.len();
        self.collect()?;
        if self.tasks.len() < before {
            return self.dispatch();
        }
        let mut sentinels = Vec::with_capacity(self.workers.len() + 1);
        sentinels.push(self.results.sentinel());
        sentinels.extend(self.workers.iter().map(|w| w.sentinel));
        let ready = wait(&sentinels, timeout)?;
        if !ready.is_empty() {
            // A worker's results are on the queue before it ends: collect them first.
            self.collect()?;
            for s in ready {
                if let Some(i) = self.workers.iter().position(|w| w.sentinel == s) {
                    self.reap(i)?;
                }
            }
        }
        self.replenish()?;
        self.dispatch()
    }

    /// Drives the pool until `done` holds or `deadline` passes; returns whether it holds.
    fn drive(
        &mut self,
        deadline: Option<Instant>,
        done: &dyn Fn(&PoolState) -> bool,
    ) -> Result<bool, Error> {
        loop {
            if done(self) {
                return Ok(true);
            }
            if self.workers.is_empty() {
                self.replenish()?;
                if self.workers.is_empty() {
                    // Nothing can change any more (terminated, or closed with nothing left).
                    return Ok(done(self));
                }
            }
            let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            self.pump(timeout)?;
            if timeout == Some(Duration::ZERO) {
                return Ok(done(self));
            }
        }
    }

    fn job_done(&self, job: u64) -> bool {
        self.jobs.get(&job).is_none_or(Job::done)
    }

    fn terminate(&mut self) -> Result<(), Error> {
        if self.state == RunState::Terminated {
            return Ok(());
        }
        self.state = RunState::Terminated;
        let collected = self.collect();
        // As CPython's, callbacks are not called for what terminate cuts short.
        for job in self.jobs.values_mut() {
            job.on_done = None;
        }
        for w in &self.workers {
            let _ = w.process.terminate();
        }
        for w in &self.workers {
            let _ = w.process.join(None);
        }
        self.workers.clear();
        self.pending.clear();
        let ids: Vec<u64> = self.tasks.keys().copied().collect();
        for id in ids {
            self.fail(id, "pool terminated");
        }
        collected
    }
}

// ---------------------------------------------------------------------------------------
// The public API
// ---------------------------------------------------------------------------------------

/// A pool of worker processes, as `multiprocessing.Pool`.
///
/// The functions it runs are registered in [`targets!`](crate::targets) after `pool:` and
/// named with [`pool_fn!`](crate::pool_fn), which keeps their types:
///
/// ```no_run
/// use wasmproc_guest::{Pool, pool_fn, targets};
///
/// fn square(x: i64) -> i64 { x * x }
/// fn add(a: i64, b: i64) -> i64 { a + b }
///
/// targets![; pool: square, add];
///
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let pool = Pool::new(4)?;
///     assert_eq!(pool.map(pool_fn!(square), 0..5)?, [0, 1, 4, 9, 16]);
///     assert_eq!(pool.apply(pool_fn!(add), (2, 3))?, 5);
///     assert_eq!(pool.starmap(pool_fn!(add), [(1, 1), (2, 2)])?, [2, 4]);
///     pool.close()?;
///     pool.join()?;
///     Ok(())
/// }
/// ```
///
/// A task that panics fails with [`ErrorKind::TaskFailed`] and the panic message ("task
/// failed in worker Process-3: panicked at src/main.rs:10:5:\nboom"); its worker ends and
/// is replaced. A worker that ends while running a task (killed, `exit(n)`) fails that task
/// ("worker Process-2 ended with exitcode -9 while running the task"); the tasks it had not
/// started run on other workers.
///
/// # Caveats
/// - There is no background thread: the pool makes progress (dispatching tasks, collecting
///   results, replacing workers) only inside calls of its own methods and those of its
///   [`AsyncResult`]s and iterators.
/// - Dropping the `Pool` terminates it, as leaving Python's `with Pool() as p:` does;
///   results not yet received fail with "pool terminated".
/// - Workers are daemonic (as in Python), so a task cannot start processes.
/// - A failed chunk (see [`map_chunked`](Self::map_chunked)) fails as a whole.
pub struct Pool {
    shared: Rc<RefCell<PoolState>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shared.try_borrow() {
            Ok(s) => f
                .debug_struct("Pool")
                .field("processes", &s.processes)
                .field("state", &s.state)
                .field("tasks", &s.tasks.len())
                .finish(),
            Err(_) => f.write_str("Pool { .. }"),
        }
    }
}

/// Options of a [`Pool`], as the arguments of Python's `Pool(...)`.
#[derive(Debug, Clone, Default)]
pub struct PoolBuilder {
    processes: usize,
    maxtasksperchild: Option<usize>,
    init: Option<InitCall>,
}

/// A pool's initializer call: serialises it as a task message. It runs each time a worker
/// is started, inside the worker's start arguments, so that sync objects among `initargs`
/// are passed to the worker as any argument's are.
#[derive(Clone)]
struct InitCall(Rc<dyn Fn() -> Result<Vec<u8>, postcard::Error>>);

impl fmt::Debug for InitCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitCall")
    }
}

/// The initializer part of a worker's arguments: its task message, or nothing.
struct InitArg<'a>(Option<&'a InitCall>);

impl Serialize for InitArg<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => Vec::<u8>::new().serialize(serializer),
            Some(call) => match (call.0)() {
                Ok(msg) => msg.serialize(serializer),
                Err(e) => Err(serde::ser::Error::custom(e)),
            },
        }
    }
}

impl PoolBuilder {
    /// The number of workers; 0 (the default) means [`cpu_count`].
    pub fn processes(mut self, n: usize) -> PoolBuilder {
        self.processes = n;
        self
    }

    /// A worker exits after this many tasks (chunks) and is replaced by a new process.
    /// Python: `maxtasksperchild`. Default: workers live as long as the pool.
    pub fn maxtasksperchild(mut self, n: usize) -> PoolBuilder {
        self.maxtasksperchild = Some(n);
        self
    }

    /// Each worker calls `f(initargs)` when it starts, before any task (also a worker that
    /// replaces one that ended). Python: `initializer` and `initargs`. `f` is a pool
    /// function (registered after `pool:` in [`targets!`](crate::targets)); its result is
    /// dropped. A worker whose initializer fails or panics ends with exit code 1, its
    /// message on its stderr, and is replaced, as in CPython (so a pool whose initializer
    /// always fails never runs a task).
    pub fn initializer<A: Serialize + 'static, R>(
        mut self,
        f: PoolFn<A, R>,
        initargs: A,
    ) -> PoolBuilder {
        let name = f.name;
        self.init = Some(InitCall(Rc::new(move || {
            postcard::to_extend(&initargs, task_header(0, name, 1))
        })));
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `maxtasksperchild` is 0 or the initializer's
    /// arguments cannot be serialised (a closed queue among them, say);
    /// [`ErrorKind::UnknownTarget`] when the program registers no pool functions;
    /// [`ErrorKind::InvalidState`] in a daemonic process (a pool task, say);
    /// [`ErrorKind::LimitExceeded`] when a limit of the run refuses a worker or a queue.
    pub fn build(self) -> Result<Pool, Error> {
        if self.maxtasksperchild == Some(0) {
            return Err(Error::invalid_argument(
                "maxtasksperchild must be a positive int or None".into(),
            ));
        }
        let init = self.init;
        let processes = if self.processes == 0 {
            cpu_count().max(1)
        } else {
            self.processes
        };
        let pool = Pool {
            shared: Rc::new(RefCell::new(PoolState {
                processes,
                maxtasks: self.maxtasksperchild,
                results: Queue::new()?,
                workers: Vec::with_capacity(processes),
                pending: VecDeque::new(),
                tasks: HashMap::new(),
                jobs: HashMap::new(),
                state: RunState::Running,
                next_task: 0,
                next_job: 0,
                next_worker: 0,
                init,
                fire: Vec::new(),
            })),
        };
        pool.shared.borrow_mut().replenish()?;
        Ok(pool)
    }
}

fn check_chunksize(chunksize: usize) -> Result<(), Error> {
    if chunksize == 0 {
        return Err(Error::invalid_argument(
            "Chunksize must be 1+, not 0".into(),
        ));
    }
    Ok(())
}

impl Pool {
    /// A pool of `processes` workers (0: [`cpu_count`]). Python: `Pool(processes)`.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`].
    pub fn new(processes: usize) -> Result<Pool, Error> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for a pool with options (`maxtasksperchild`).
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Encodes `items` into tasks of `chunksize` calls of `name` and submits them.
    fn submit<I: Serialize>(
        &self,
        name: &'static str,
        items: &[I],
        chunksize: usize,
        unordered: bool,
        on_done: Option<OnDone>,
    ) -> Result<u64, Error> {
        let mut st = self.shared.borrow_mut();
        if st.state != RunState::Running {
            return Err(not_running());
        }
        let mut msgs = Vec::with_capacity(items.len().div_ceil(chunksize));
        for (i, chunk) in items.chunks(chunksize).enumerate() {
            let id = st.next_task + 1 + i as u64;
            let count = chunk.len() as u32;
            let mut msg = task_header(id, name, count);
            for item in chunk {
                msg = postcard::to_extend(item, msg).map_err(|e| {
                    serialize_error(e, || format!("an argument of pool function '{name}'"))
                })?;
            }
            msgs.push((count, msg));
        }
        st.submit(msgs, unordered, on_done)
    }

    /// Python's default chunk size for `map`: the items spread over four chunks per worker.
    fn default_chunksize(&self, n: usize) -> usize {
        let per = self.shared.borrow().processes * 4;
        n.div_ceil(per).max(1)
    }

    fn run_all<I: Serialize, R: DeserializeOwned>(
        &self,
        name: &'static str,
        items: &[I],
        chunksize: usize,
    ) -> Result<Vec<R>, Error> {
        let job = self.submit(name, items, chunksize, false, None)?;
        let mut st = self.shared.borrow_mut();
        let driven = st.drive(None, &|s| s.job_done(job));
        let job = st.jobs.remove(&job);
        drop(st);
        run_callbacks(&self.shared);
        let Some(job) = job else {
            return driven.map(|_| Vec::new());
        };
        driven?;
        decode_all(&job, name)
    }

    /// Calls `f` on every item, in chunks of Python's default size; returns the results in
    /// order, or the first failure. Python: `map(f, items)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Pool not running" after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); [`ErrorKind::TaskFailed`] for the first chunk that
    /// failed; [`ErrorKind::InvalidArgument`] when an item cannot be serialised or a result
    /// does not decode as `R`; otherwise the errors of driving the pool, as
    /// [`join`](Self::join).
    pub fn map<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, Error> {
        let items: Vec<A> = items.into_iter().collect();
        self.run_all(f.name, &items, self.default_chunksize(items.len()))
    }

    /// As [`map`](Self::map), sending `chunksize` items to a worker at a time.
    /// Python: `map(f, items, chunksize)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `chunksize` is 0; otherwise as
    /// [`map`](Self::map).
    pub fn map_chunked<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, Error> {
        check_chunksize(chunksize)?;
        let items: Vec<A> = items.into_iter().collect();
        self.run_all(f.name, &items, chunksize)
    }

    /// Calls `f` with each tuple of arguments; returns the results in order.
    /// Python: `starmap(f, items)`. (The same as [`map`](Self::map): a [`PoolFn`] of
    /// several parameters already takes their tuple.)
    ///
    /// # Errors
    /// As [`map`](Self::map).
    pub fn starmap<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<Vec<R>, Error> {
        self.map(f, items)
    }

    /// Submits every item at once, in chunks of `chunksize`, and returns an iterator over
    /// the results in order. A failed chunk yields one `Err` in its place.
    /// Python: `imap(f, items, chunksize)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Pool not running" after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); [`ErrorKind::InvalidArgument`] when `chunksize` is 0
    /// or an item cannot be serialised; otherwise the errors of driving the pool, as
    /// [`join`](Self::join). A failed task is an `Err` item of the iterator instead.
    pub fn imap<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, Error> {
        self.imap_impl(f, items, chunksize, false)
    }

    /// As [`imap`](Self::imap), yielding each chunk's results as soon as it completes.
    /// Python: `imap_unordered(f, items, chunksize)`.
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    pub fn imap_unordered<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<IMapIter<R>, Error> {
        self.imap_impl(f, items, chunksize, true)
    }

    fn imap_impl<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
        unordered: bool,
    ) -> Result<IMapIter<R>, Error> {
        check_chunksize(chunksize)?;
        let items: Vec<A> = items.into_iter().collect();
        let job = self.submit(f.name, &items, chunksize, unordered, None)?;
        Ok(IMapIter {
            shared: self.shared.clone(),
            job,
            name: f.name,
            chunks: items.len().div_ceil(chunksize),
            taken: 0,
            unordered,
            buffer: VecDeque::new(),
        })
    }

    /// Calls `f` with `args` in a worker and returns its result. `args` is the argument of
    /// a one-parameter function, the tuple of the arguments otherwise.
    /// Python: `apply(f, args)`.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async) and [`AsyncResult::get`].
    pub fn apply<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        args: A,
    ) -> Result<R, Error> {
        self.apply_async(f, args)?.get(None)
    }

    /// Submits one call and returns at once (the task is dispatched now if a worker has
    /// room). Python: `apply_async(f, args)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Pool not running" after [`close`](Self::close) or
    /// [`terminate`](Self::terminate); [`ErrorKind::InvalidArgument`] when `args` cannot be
    /// serialised; otherwise the errors of driving the pool, as [`join`](Self::join). A
    /// failed task is the error of [`AsyncResult::get`] instead.
    pub fn apply_async<A: Serialize, R: DeserializeOwned>(
        &self,
        f: PoolFn<A, R>,
        args: A,
    ) -> Result<AsyncResult<R>, Error> {
        self.submit_async(
            f.name,
            std::slice::from_ref(&args),
            1,
            None,
            decode_one::<R>,
        )
    }

    /// Submits `items` in chunks of `chunksize`, with `on_done` to run once they are done;
    /// the job's [`AsyncResult`], whose value `decode` gives.
    fn submit_async<I: Serialize, R>(
        &self,
        name: &'static str,
        items: &[I],
        chunksize: usize,
        on_done: Option<OnDone>,
        decode: Decode<R>,
    ) -> Result<AsyncResult<R>, Error> {
        let job = self.submit(name, items, chunksize, false, on_done)?;
        if let Some(j) = self.shared.borrow_mut().jobs.get_mut(&job) {
            j.early = true;
        }
        Ok(AsyncResult {
            shared: self.shared.clone(),
            job,
            name,
            decode,
        })
    }

    /// As [`apply_async`](Self::apply_async), calling `callbacks.callback` with the result or
    /// `callbacks.error_callback` with the error once the task is done. Python:
    /// `apply_async(f, args, callback=..., error_callback=...)`. See [`Callbacks`] for when
    /// they run.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async).
    pub fn apply_async_with<A: Serialize, R: DeserializeOwned + 'static>(
        &self,
        f: PoolFn<A, R>,
        args: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>, Error> {
        let on_done = callbacks.on_done(f.name, decode_one::<R>);
        self.submit_async(
            f.name,
            std::slice::from_ref(&args),
            1,
            on_done,
            decode_one::<R>,
        )
    }

    /// Submits `f` on every item at once (in chunks of Python's default size) and returns
    /// at once; the [`AsyncResult`]'s value is the results in order, or, as in CPython, the
    /// error of the first chunk to fail: the result is ready (and an `error_callback` runs)
    /// as soon as one fails, while the other chunks still run and their outcomes are
    /// dropped. Python: `map_async(f, items)`.
    ///
    /// # Errors
    /// As [`apply_async`](Self::apply_async).
    pub fn map_async<A: Serialize, R: DeserializeOwned + 'static>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, Error> {
        self.map_async_with(f, items, None, Callbacks::new())
    }

    /// As [`map_async`](Self::map_async), in chunks of `chunksize` items (`None`: Python's
    /// default), with callbacks. Python: `map_async(f, items, chunksize, callback=...,
    /// error_callback=...)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when `chunksize` is 0; otherwise as
    /// [`apply_async`](Self::apply_async).
    pub fn map_async_with<A: Serialize, R: DeserializeOwned + 'static>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>, Error> {
        let items: Vec<A> = items.into_iter().collect();
        let chunksize = match chunksize {
            Some(c) => {
                check_chunksize(c)?;
                c
            }
            None => self.default_chunksize(items.len()),
        };
        let on_done = callbacks.on_done(f.name, decode_all::<R>);
        self.submit_async(f.name, &items, chunksize, on_done, decode_all::<R>)
    }

    /// As [`map_async`](Self::map_async) with each tuple of arguments. Python:
    /// `starmap_async(f, items)`. (A [`PoolFn`] of several parameters already takes their
    /// tuple.)
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    pub fn starmap_async<A: Serialize, R: DeserializeOwned + 'static>(
        &self,
        f: PoolFn<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>, Error> {
        self.map_async(f, items)
    }

    /// No more tasks may be submitted (later submissions fail with
    /// [`ErrorKind::InvalidState`] "Pool not running"); the workers exit once the submitted
    /// tasks are done. Python: `close()`.
    ///
    /// # Errors
    /// The errors of dispatching the waiting tasks and the workers' stop messages, as
    /// [`join`](Self::join); the pool is closed all the same.
    pub fn close(&self) -> Result<(), Error> {
        let mut st = self.shared.borrow_mut();
        if st.state == RunState::Running {
            st.state = RunState::Closed;
            st.dispatch()?;
        }
        Ok(())
    }

    /// Waits until every task has a result and every worker has exited. Only after
    /// [`close`](Self::close) or [`terminate`](Self::terminate); before, it fails with
    /// [`ErrorKind::InvalidState`] "Pool is still running". Python: `join()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "Pool is still running" before [`close`](Self::close) or
    /// [`terminate`](Self::terminate); the errors of driving the pool: a replacement worker
    /// that cannot be started (as [`PoolBuilder::build`]), or a task the run's `message` or
    /// `queued` limit refuses ([`ErrorKind::LimitExceeded`]).
    pub fn join(&self) -> Result<(), Error> {
        let mut st = self.shared.borrow_mut();
        if st.state == RunState::Running {
            return Err(Error::new(ErrorKind::InvalidState, "Pool is still running"));
        }
        let driven = st.drive(None, &|s| s.tasks.is_empty() && s.workers.is_empty());
        drop(st);
        run_callbacks(&self.shared);
        driven.map(|_| ())
    }

    /// Ends every worker at once; results not yet received fail with
    /// [`ErrorKind::TaskFailed`] "pool terminated". Python: `terminate()`.
    ///
    /// # Errors
    /// The error of collecting the results already waiting, such as
    /// [`ErrorKind::HostFailure`]; the workers are ended all the same.
    pub fn terminate(&self) -> Result<(), Error> {
        let terminated = self.shared.borrow_mut().terminate();
        run_callbacks(&self.shared);
        terminated
    }

    /// The workers running now, in start order (after the pool has caught up with workers
    /// that ended). Each is a new reference to the worker's process object.
    pub fn processes(&self) -> Vec<Process> {
        let mut st = self.shared.borrow_mut();
        let _ = st.drive(Some(Instant::now()), &|_| false);
        let handles: HashSet<u64> = st.workers.iter().map(|w| w.process.handle()).collect();
        drop(st);
        run_callbacks(&self.shared);
        active_children()
            .into_iter()
            .filter(|p| handles.contains(&p.handle()))
            .collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.try_borrow_mut() {
            let _ = st.terminate();
        }
    }
}

fn decode_outcome<R: DeserializeOwned>(
    outcome: Option<&Outcome>,
    count: u32,
    name: &str,
    out: &mut Vec<R>,
) -> Result<(), Error> {
    match outcome {
        Some(Outcome::Done(msg, start)) => decode_results(&msg[*start..], count, name, out),
        Some(Outcome::Failed(e)) => Err(e.clone()),
        None => Err(Error::new(ErrorKind::TaskFailed, "pool terminated")),
    }
}

fn decode_results<R: DeserializeOwned>(
    mut bytes: &[u8],
    count: u32,
    name: &str,
    out: &mut Vec<R>,
) -> Result<(), Error> {
    for _ in 0..count {
        let (value, rest) = postcard::take_from_bytes::<R>(bytes).map_err(|e| {
            Error::invalid_argument(format!(
                "cannot decode the result of pool function '{name}' as {}: {e}",
                std::any::type_name::<R>()
            ))
        })?;
        out.push(value);
        bytes = rest;
    }
    Ok(())
}

/// The value of a finished job: one call's result, or every call's in order.
type Decode<R> = fn(&Job, &'static str) -> Result<R, Error>;

/// The result of the job's one call.
fn decode_one<R: DeserializeOwned>(job: &Job, name: &'static str) -> Result<R, Error> {
    let mut out = Vec::with_capacity(1);
    decode_outcome(job.chunks[0].1.as_ref(), 1, name, &mut out)?;
    out.pop()
        .ok_or_else(|| Error::new(ErrorKind::HostFailure, "a pool task gave no result"))
}

/// The results of every call of the job, in order; the error of the chunk that failed
/// first (in completion order for an early job, in item order otherwise).
fn decode_all<R: DeserializeOwned>(job: &Job, name: &'static str) -> Result<Vec<R>, Error> {
    if job.early
        && let Some(chunk) = job.failed_first
        && let Some(Outcome::Failed(e)) = &job.chunks[chunk].1
    {
        return Err(e.clone());
    }
    let mut out = Vec::new();
    for (count, outcome) in &job.chunks {
        decode_outcome(outcome.as_ref(), *count, name, &mut out)?;
    }
    Ok(out)
}

/// Runs the callbacks of the jobs that finished, with the pool's state free for them to use
/// (a callback may submit more work).
fn run_callbacks(shared: &Rc<RefCell<PoolState>>) {
    loop {
        let due = match shared.try_borrow_mut() {
            Ok(mut st) => std::mem::take(&mut st.fire),
            Err(_) => return,
        };
        if due.is_empty() {
            return;
        }
        for call in due {
            call();
        }
    }
}

/// The callbacks of an asynchronous submission ([`Pool::apply_async_with`],
/// [`Pool::map_async_with`]): `callback` gets the value [`AsyncResult::get`] gives,
/// `error_callback` the error instead. Python: the `callback` and `error_callback`
/// arguments.
///
/// A guest has no background thread, so they run in the caller, inside the pool method
/// (or [`AsyncResult`] or iterator method) that collects the job's last result, once the
/// job is done; [`Pool::join`] runs every one still due. A callback may use the pool. As in
/// CPython, none runs for a job that [`Pool::terminate`] (or dropping the pool) cut short;
/// unlike CPython, a callback runs even when its [`AsyncResult`] was dropped, as long as
/// the pool is driven (by `close` and `join`, say).
pub struct Callbacks<R> {
    callback: Option<Box<dyn FnOnce(R)>>,
    error_callback: Option<Box<dyn FnOnce(Error)>>,
}

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks {
            callback: None,
            error_callback: None,
        }
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("callback", &self.callback.is_some())
            .field("error_callback", &self.error_callback.is_some())
            .finish()
    }
}

impl<R: 'static> Callbacks<R> {
    /// No callbacks.
    pub fn new() -> Callbacks<R> {
        Callbacks::default()
    }

    /// Called with the value once the job succeeded.
    pub fn callback(mut self, f: impl FnOnce(R) + 'static) -> Callbacks<R> {
        self.callback = Some(Box::new(f));
        self
    }

    /// Called with the error once the job failed.
    pub fn error_callback(mut self, f: impl FnOnce(Error) + 'static) -> Callbacks<R> {
        self.error_callback = Some(Box::new(f));
        self
    }

    /// The job's end action: decodes its value and calls the callback that applies.
    fn on_done(self, name: &'static str, decode: Decode<R>) -> Option<OnDone> {
        let Callbacks {
            callback,
            error_callback,
        } = self;
        if callback.is_none() && error_callback.is_none() {
            return None;
        }
        Some(Box::new(move |job: &Job| -> Box<dyn FnOnce()> {
            match decode(job, name) {
                Ok(value) => match callback {
                    Some(f) => Box::new(move || f(value)),
                    None => Box::new(|| ()),
                },
                Err(e) => match error_callback {
                    Some(f) => Box::new(move || f(e)),
                    None => Box::new(|| ()),
                },
            }
        }))
    }
}

/// The result of [`Pool::apply_async`] and [`Pool::map_async`], as Python's `AsyncResult`.
///
/// # Caveats
/// Dropping it abandons the result (the task still runs). Waiting on it drives the pool.
pub struct AsyncResult<R> {
    shared: Rc<RefCell<PoolState>>,
    job: u64,
    name: &'static str,
    decode: Decode<R>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("function", &self.name)
            .field("job", &self.job)
            .finish()
    }
}

impl<R> AsyncResult<R> {
    /// The result, waiting for it at most `timeout` (`None`: as long as it takes); after a
    /// timeout, [`ErrorKind::Timeout`]. A failed task gives its error
    /// ([`ErrorKind::TaskFailed`]). May be called again. Python: `get(timeout)`.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when the result is not ready within `timeout`;
    /// [`ErrorKind::TaskFailed`] when the task failed or the pool was terminated;
    /// [`ErrorKind::InvalidArgument`] when the result does not decode as `R`; otherwise the
    /// errors of driving the pool, as [`Pool::join`].
    pub fn get(&self, timeout: impl Into<Option<Duration>>) -> Result<R, Error> {
        if !self.wait_done(timeout.into())? {
            return Err(Error::new(
                ErrorKind::Timeout,
                "timed out waiting for the result",
            ));
        }
        let st = self.shared.borrow();
        match st.jobs.get(&self.job) {
            Some(job) => (self.decode)(job, self.name),
            None => Err(Error::new(ErrorKind::TaskFailed, "pool terminated")),
        }
    }

    /// Waits until the result is ready or `timeout` passes (`None`: as long as it takes);
    /// returns `Ok` either way, as Python's `wait(timeout)` returns `None`.
    ///
    /// # Errors
    /// The errors of driving the pool, as [`Pool::join`]; neither a timeout nor a failed
    /// task is an error here.
    pub fn wait(&self, timeout: impl Into<Option<Duration>>) -> Result<(), Error> {
        self.wait_done(timeout.into()).map(|_| ())
    }

    /// Whether the result is ready (collecting results that arrived). Python: `ready()`.
    pub fn ready(&self) -> bool {
        self.wait_done(Some(Duration::ZERO)).unwrap_or(false)
    }

    /// Whether the task succeeded; [`ErrorKind::InvalidState`] "AsyncResult not ready"
    /// before it is ready. Python: `successful()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] "AsyncResult not ready" before the result is ready.
    pub fn successful(&self) -> Result<bool, Error> {
        if !self.ready() {
            return Err(Error::new(ErrorKind::InvalidState, "AsyncResult not ready"));
        }
        let st = self.shared.borrow();
        Ok(st.jobs.get(&self.job).is_some_and(|j| {
            j.chunks
                .iter()
                .all(|(_, o)| matches!(o, Some(Outcome::Done(..))))
        }))
    }

    fn wait_done(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let job = self.job;
        let done = self
            .shared
            .borrow_mut()
            .drive(deadline, &|s| s.job_done(job));
        run_callbacks(&self.shared);
        done
    }
}

impl<R> Drop for AsyncResult<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}

fn abandon(shared: &Rc<RefCell<PoolState>>, job: u64) {
    if let Ok(mut st) = shared.try_borrow_mut() {
        match st.jobs.get_mut(&job) {
            Some(j) if j.remaining > 0 => j.abandoned = true,
            Some(_) => {
                st.jobs.remove(&job);
            }
            None => {}
        }
    }
}

/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: each item is one call's
/// result, or one `Err` for a chunk that failed. Advancing it drives the pool.
///
/// # Caveats
/// Dropping it abandons the results not yet read (their tasks still run).
pub struct IMapIter<R> {
    shared: Rc<RefCell<PoolState>>,
    job: u64,
    name: &'static str,
    chunks: usize,
    taken: usize,
    unordered: bool,
    buffer: VecDeque<R>,
}

impl<R> fmt::Debug for IMapIter<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMapIter")
            .field("function", &self.name)
            .field("chunks", &self.chunks)
            .field("taken", &self.taken)
            .field("unordered", &self.unordered)
            .finish()
    }
}

impl<R: DeserializeOwned> Iterator for IMapIter<R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Result<R, Error>> {
        if let Some(r) = self.buffer.pop_front() {
            return Some(Ok(r));
        }
        if self.taken == self.chunks {
            return None;
        }
        let (job, next, unordered) = (self.job, self.taken, self.unordered);
        let mut st = self.shared.borrow_mut();
        let ready = move |s: &PoolState| match s.jobs.get(&job) {
            None => true,
            Some(j) if unordered => j.completed.as_ref().is_some_and(|c| !c.is_empty()),
            Some(j) => j.chunks[next].1.is_some(),
        };
        if let Err(e) = st.drive(None, &ready) {
            self.taken = self.chunks;
            drop(st);
            run_callbacks(&self.shared);
            return Some(Err(e));
        }
        let (count, outcome) = match st.jobs.get_mut(&job) {
            None => (0, None),
            Some(j) => {
                let chunk = if unordered {
                    j.completed
                        .as_mut()
                        .and_then(VecDeque::pop_front)
                        .unwrap_or(next)
                } else {
                    next
                };
                let (count, outcome) = &mut j.chunks[chunk];
                (*count, outcome.take())
            }
        };
        drop(st);
        run_callbacks(&self.shared);
        self.taken += 1;
        let mut out = Vec::with_capacity(count as usize);
        if let Err(e) = decode_outcome(outcome.as_ref(), count, self.name, &mut out) {
            return Some(Err(e));
        }
        self.buffer.extend(out);
        self.buffer.pop_front().map(Ok).or_else(|| self.next())
    }
}

impl<R> Drop for IMapIter<R> {
    fn drop(&mut self) {
        abandon(&self.shared, self.job);
    }
}
