//! What the processes of one host share ([`HostState`]), what the processes of one run
//! share ([`Run`]), and how a process runs in this OS process ([`Runner`], [`start_here`]).

use super::core::{ProcessCore, supervise};
use super::ctx::ProcessCtx;
use super::handles::Handles;
use super::limits::{Args, Held};
use crate::backend::{Backend, BackendRun, Control};
use crate::exit::{ExitStatus, Signal};
use crate::lock;
use crate::output::{Captured, ProcessOutput};
use crate::program::Programs;
use crate::sync::Link;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Where a process's guest code starts.
pub(crate) enum Entry {
    /// The program's main (`wasi:cli/run`, or the SDK's `run-main`), with its arguments.
    Main(Vec<String>),
    /// A target, with its start arguments.
    Target { name: String, args: Args },
}

/// Runs a process's guest code in this OS process (the engine).
pub(crate) trait Runner: Send + Sync {
    /// Runs the guest code of process `ctx` from `entry`, to the status it ended with.
    fn run(self: Arc<Self>, ctx: Arc<ProcessCtx>, entry: Entry) -> BoxFuture<'static, ExitStatus>;
}

/// What every process of one host shares (a host is a [`crate::Host`], or a native child
/// process).
pub(crate) struct HostState {
    pub backend: Box<dyn Backend>,
    pub runner: Arc<dyn Runner>,
    /// The scheduler every process task of this host runs on.
    pub runtime: tokio::runtime::Handle,
    pub config: crate::Config,
    pub(super) handles: Handles,
    authkey: [u8; 32],
    /// `os.cpu_count()`, found on first use (a native child rarely needs it, and reading
    /// the cgroup files it takes costs each one a dozen system calls).
    cpu_count: OnceLock<u32>,
    /// The library's `Host` was dropped: its processes were killed and none may start.
    host_gone: AtomicBool,
    /// The other programs processes may start children of, by name.
    pub programs: Programs,
    /// Where the lifecycle events of the host's runs go.
    pub events: Arc<crate::events::EventBus>,
}

/// What a [`HostState`] is made of.
pub(crate) struct NewHost {
    pub backend: Box<dyn Backend>,
    pub runner: Arc<dyn Runner>,
    pub runtime: tokio::runtime::Handle,
    pub config: crate::Config,
    /// Inherited from the parent host (a native child), or made afresh.
    pub authkey: Option<[u8; 32]>,
    pub programs: Programs,
}

impl HostState {
    /// The state of a host whose process handles are those of OS process `os_pid` (so that
    /// handles of processes in different OS processes differ).
    pub fn new(init: NewHost, os_pid: u32) -> Arc<Self> {
        Arc::new(HostState {
            backend: init.backend,
            runner: init.runner,
            runtime: init.runtime,
            config: init.config,
            handles: Handles::for_os_process(os_pid),
            authkey: init.authkey.unwrap_or_else(rand::random),
            cpu_count: OnceLock::new(),
            host_gone: AtomicBool::new(false),
            programs: init.programs,
            events: Arc::default(),
        })
    }

    /// A new run of this host: its backend's part and its objects' link.
    pub fn new_run(&self) -> Result<Arc<Run>, crate::Error> {
        let (part, link) = self.backend.new_run(&self.config)?;
        if let Link::Here(registry) = &link {
            registry.set_events(self.events.clone());
        }
        Ok(Arc::new(Run::new(part, link)))
    }

    /// Marks the host as dropped.
    pub fn set_host_gone(&self) {
        self.host_gone.store(true, Ordering::SeqCst);
    }

    pub fn host_gone(&self) -> bool {
        self.host_gone.load(Ordering::SeqCst)
    }

    pub fn authkey(&self) -> &[u8; 32] {
        &self.authkey
    }

    pub fn cpu_count(&self) -> u32 {
        *self.cpu_count.get_or_init(|| {
            std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1)
        })
    }

    /// Creates the output of a process of `run` that is about to start, and lists what it
    /// captures with the run's:
    /// `limit` bytes per stream (the `output` limit it runs under).
    pub fn output_for(&self, run: &Run, name: &str, limit: u64) -> ProcessOutput {
        let output = ProcessOutput::new(self.config.output, name, limit, run.part.capture_dir());
        if let Some(c) = output.captured() {
            lock(&run.captured).push(c);
        }
        output
    }
}

/// The processes of one run: a main process and its descendants (or the library's root
/// and the processes it started).
pub(crate) struct Run {
    /// The backend's share of the run.
    pub part: Box<dyn BackendRun>,
    /// Where the run's queues, pipes, events and locks live.
    pub link: Link,
    captured: Mutex<Vec<Captured>>,
    /// Every process started in the run from this OS process, so that none outlives it.
    started: Mutex<Vec<Weak<ProcessCore>>>,
    /// How many of those are running (to keep `started` near that size).
    pub(super) live: Arc<AtomicU64>,
    /// Starts in progress (not yet in `started`).
    pub(super) starting: AtomicUsize,
    /// What this OS process holds for the run's child records (the `held` limit).
    pub(super) held: Held,
}

impl Run {
    pub fn new(part: Box<dyn BackendRun>, link: Link) -> Self {
        Run {
            part,
            link,
            captured: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
            live: Arc::new(AtomicU64::new(0)),
            starting: AtomicUsize::new(0),
            held: Held::default(),
        }
    }

    /// Lists a process that has started.
    pub(super) fn add(&self, core: &Arc<ProcessCore>) {
        let mut started = lock(&self.started);
        // Forget ended processes now and then, so that the list stays near the live count.
        if started.len() >= 2 * self.live.load(Ordering::Relaxed) as usize + 64 {
            started.retain(|w| w.upgrade().is_some_and(|c| c.is_alive()));
        }
        started.push(Arc::downgrade(core));
    }

    /// Ends the run: kills every process of the run still running (orphans whose parent
    /// was terminated or killed) and waits until they have ended.
    pub async fn kill_all(&self) {
        // A process being killed may still be starting a child: wait for starts in
        // progress, and go round again until a round finds nothing left to kill.
        loop {
            while self.starting.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let live: Vec<Arc<ProcessCore>> = lock(&self.started)
                .drain(..)
                .filter_map(|w| w.upgrade())
                .collect();
            if live.is_empty() {
                break;
            }
            for core in &live {
                core.signal(Signal::Kill);
            }
            for core in &live {
                core.wait_exit(None).await;
            }
        }
        // Processes of the run in other OS processes (orphaned grandchildren of native
        // children) end with the backend's part of the run; waiting for them blocks, so it
        // is kept off the scheduler's threads.
        tokio::task::block_in_place(|| self.part.end());
    }

    /// Output captured so far, read into memory (files of a native run are removed with
    /// the run).
    pub fn captured_owned(&self) -> Vec<Captured> {
        self.captured()
            .into_iter()
            .map(|c| c.into_memory())
            .collect()
    }

    /// Output captured so far, one entry per started process, in start order.
    pub fn captured(&self) -> Vec<Captured> {
        match self.part.capture_dir() {
            Some(dir) => crate::output::read_capture_dir(dir),
            None => lock(&self.captured).clone(),
        }
    }
}

/// Signals a process that runs in this OS process: its task ends at once, also while it
/// waits inside a host call.
struct TaskControl(watch::Sender<Option<Signal>>);

impl Control for TaskControl {
    fn signal(&self, sig: Signal) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(sig);
                true
            } else {
                false
            }
        });
    }
}

/// Starts the child process `ctx` in this OS process from `entry`: as a task (at the end
/// of its parent's poll, [`super::sched`]), or on a thread of its own with
/// `thread_per_process`. Returns what signals it.
pub(super) fn start_here(ctx: Arc<ProcessCtx>, entry: Entry) -> Result<Box<dyn Control>, String> {
    let (tx, signals) = watch::channel(None);
    let core = ctx.core().clone();
    let host = ctx.host().clone();
    let process = async move {
        supervise(ctx, entry, signals).await;
    };
    if host.config.thread_per_process {
        // The measured alternative: an OS thread per process, each with a scheduler of its
        // own (WASI's blocking calls stay interruptible).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| format!("cannot create a thread: {e}"))?;
        std::thread::Builder::new()
            .name("wasmproc-process".into())
            .spawn(move || runtime.block_on(process))
            .map_err(|e| format!("cannot create a thread: {e}"))?;
    } else {
        super::sched::start(&core, &host.runtime, process);
    }
    Ok(Box::new(TaskControl(tx)))
}
