//! The process model, written once for every backend: identities and names, the lifecycle
//! of a process object, ownership checks, daemon rules and the exit handler (SPEC §3–4).
//!
//! Each running process has a [`ProcessCtx`]: its own view of the world, holding the objects
//! it may name by handle (its children, itself, its parent). Every guest call and every call
//! of the library's [`crate::Process`] goes through a `ProcessCtx`, so the rules below apply
//! the same way to both. A backend only creates processes and delivers signals
//! ([`crate::backend::Backend`]); it reports how a process ended through [`ProcessCore`].

use crate::backend::native::NativeRun;
use crate::backend::{Backend, Control, SpawnRequest};
use crate::error::{ErrorKind, ProcessError};
use crate::exit::{ExitStatus, Signal};
use crate::output::{Captured, ProcessOutput};
use crate::program::Program;
use crate::sync::remote::Client;
use crate::sync::{Object as SyncObject, Registry, Request, Response, SyncTable, is_sync_handle};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// Locks `m`, recovering the data if another thread panicked while holding it: the data
/// here is kept consistent between statements, so a poisoned lock is no reason to panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every process of one host run shares.
pub(crate) struct RunShared {
    pub backend: Box<dyn Backend>,
    pub config: crate::Config,
    next_handle: AtomicU64,
    authkey: [u8; 32],
    /// `os.cpu_count()`, found on first use (a native child rarely needs it, and reading
    /// the cgroup files it takes costs each one a dozen system calls).
    cpu_count: OnceLock<u32>,
    /// The library's `Host` was dropped: its processes were killed and none may start.
    host_gone: std::sync::atomic::AtomicBool,
    /// The other programs processes may start children of, by name.
    programs: OnceLock<Programs>,
}

/// Where an allowed program comes from.
pub(crate) enum ProgramSource {
    /// A file, compiled when first used (in the run's root host).
    File(std::path::PathBuf),
    /// A compiled program's artifact, mapped when first used (in a native child).
    Artifact {
        path: std::path::PathBuf,
        display_name: String,
        targets: Vec<String>,
    },
    /// A loaded program.
    Loaded(Program),
}

/// The programs a host allows processes to start children of, loaded once each.
pub(crate) struct Programs {
    engine: Arc<crate::backend::wasm::WasmEngine>,
    allowed: Vec<(String, Mutex<ProgramSource>)>,
}

impl Programs {
    pub fn new(
        engine: Arc<crate::backend::wasm::WasmEngine>,
        allowed: Vec<(String, ProgramSource)>,
    ) -> Self {
        Programs {
            engine,
            allowed: allowed
                .into_iter()
                .map(|(n, s)| (n, Mutex::new(s)))
                .collect(),
        }
    }

    /// The names allowed, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.allowed.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Program `name`, loading it on first use.
    pub fn get(&self, name: &str) -> Result<Program> {
        let Some((_, source)) = self.allowed.iter().find(|(n, _)| n == name) else {
            let names = self.names();
            return Err(ProcessError::new(
                ErrorKind::UnknownTarget,
                if names.is_empty() {
                    format!("the host allows no other program (asked for '{name}')")
                } else {
                    format!(
                        "the host allows no program named '{name}' (allowed: {})",
                        names.join(", ")
                    )
                },
            ));
        };
        let mut source = lock(source);
        let program = match &*source {
            ProgramSource::Loaded(p) => return Ok(p.clone()),
            ProgramSource::File(path) => self.engine.load(path),
            ProgramSource::Artifact {
                path,
                display_name,
                targets,
            } => self
                .engine
                .load_artifact(path, display_name.clone(), targets.clone()),
        }
        .map_err(|e| ProcessError::host_failure(format!("cannot load program '{name}': {e}")))?;
        *source = ProgramSource::Loaded(program.clone());
        Ok(program)
    }
}

impl RunShared {
    /// What the processes of a host share. `authkey` is inherited from the parent host
    /// (native children) or made afresh; handles start at `first_handle`, so that handles
    /// of processes in different OS processes differ.
    pub fn new(
        backend: Box<dyn Backend>,
        config: crate::Config,
        authkey: Option<[u8; 32]>,
        first_handle: u64,
    ) -> Self {
        RunShared {
            backend,
            config,
            next_handle: AtomicU64::new(first_handle),
            authkey: authkey.unwrap_or_else(rand::random),
            cpu_count: OnceLock::new(),
            host_gone: std::sync::atomic::AtomicBool::new(false),
            programs: OnceLock::new(),
        }
    }

    fn handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    /// Sets the other programs processes may start children of (once).
    pub fn set_programs(&self, programs: Programs) {
        let _ = self.programs.set(programs);
    }

    pub fn programs(&self) -> Option<&Programs> {
        self.programs.get()
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

    /// Creates the output of a process of `tree` that is about to start.
    pub fn output_for(&self, tree: &Tree, name: &str) -> ProcessOutput {
        let output = ProcessOutput::new(
            self.config.output,
            name,
            self.config.limits.output,
            tree.capture_dir(),
        );
        if let Some(c) = output.captured() {
            lock(&tree.captured).push(c);
        }
        output
    }
}

/// The processes of one run: a main process and its descendants (or the library's root
/// and the processes it started).
pub(crate) struct Tree {
    captured: Mutex<Vec<Captured>>,
    /// Every process started in the tree, so that none outlives the run.
    started: Mutex<Vec<std::sync::Weak<ProcessCore>>>,
    /// What processes of the run in other OS processes share (native backend).
    native: Option<NativeRun>,
    /// How many processes started in this tree are running.
    live: Arc<AtomicU64>,
    /// Starts in progress (not yet in `started`).
    starting: std::sync::atomic::AtomicUsize,
    /// Where the run's queues, pipes, events and locks live.
    sync: SyncHome,
}

/// Where the sync objects of a run live, seen from one OS process.
#[derive(Clone)]
pub(crate) enum SyncHome {
    /// In this host process (the run's root).
    Here(Arc<Registry>),
    /// In the run's root host, reached over its socket (a native child process).
    Server(Arc<RemoteSync>),
}

/// How long a native process's `queue-post` may wait to be sent with a later call.
const POST_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// The most bytes of posts a native process keeps unsent; the post that reaches it sends
/// them all, waiting for room in the socket.
const POST_BUFFER: usize = 64 << 10;

/// A native child process's way to the run's objects: connected on first use, or at
/// start when its parent shared objects with it.
pub(crate) struct RemoteSync {
    socket: std::path::PathBuf,
    name: String,
    token: u64,
    client: tokio::sync::OnceCell<Client>,
    /// A second connection for the bookkeeping of this process's own children, so that it
    /// never waits behind a blocking call of the guest.
    control: tokio::sync::OnceCell<Client>,
}

impl RemoteSync {
    pub fn new(socket: std::path::PathBuf, name: String, token: u64) -> Arc<Self> {
        Arc::new(RemoteSync {
            socket,
            name,
            token,
            client: tokio::sync::OnceCell::new(),
            control: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether the parent shared objects that must be claimed at once.
    pub fn has_shares(&self) -> bool {
        self.token != 0
    }

    pub async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| Client::connect(&self.socket, &self.name, self.token))
            .await
    }

    /// Posts `request` ([`Client::post`]): it goes with the next call, or by a flush at
    /// most [`POST_DELAY`] later.
    pub async fn post(self: &Arc<Self>, h: u64, item: Vec<u8>) -> Result<()> {
        let client = self.client().await?;
        match client.post(h, item)? {
            (0, _) => {
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(POST_DELAY).await;
                    me.flush().await;
                });
            }
            // A process that posts faster than the server takes them waits here, for room
            // in the socket, instead of piling up posts in memory.
            (_, waiting) if waiting >= POST_BUFFER => client.flush().await?,
            _ => {}
        }
        Ok(())
    }

    /// Sends the posts not sent yet (a lost connection is the next call's error).
    pub async fn flush(&self) {
        if let Some(client) = self.client.get() {
            let _ = client.flush().await;
        }
    }

    async fn control(&self) -> Result<&Client> {
        self.control
            .get_or_try_init(|| Client::connect(&self.socket, "", 0))
            .await
    }
}

impl SyncHome {
    /// Waits until the server has dropped every connection of OS process `pid` (so a lock
    /// it held is released before anyone learns that it ended), then drops the share
    /// `token` if the process never claimed it.
    pub async fn process_gone(&self, pid: u32, token: u64) {
        match self {
            SyncHome::Here(registry) => {
                registry.gone(pid).await;
                registry.claim(token);
            }
            SyncHome::Server(remote) => {
                if let Ok(control) = remote.control().await {
                    let _ = control.call(Request::Gone { pid }).await;
                    if token != 0 {
                        let _ = control.call(Request::Revoke { token }).await;
                    }
                }
            }
        }
    }

    /// The share `shares` as a token a native child claims.
    pub fn token(&self, shares: Shares) -> u64 {
        match (shares, self) {
            (Shares::None, _) => 0,
            (Shares::Token(t), _) => t,
            (Shares::Objects(objects), SyncHome::Here(registry)) => registry.share(objects),
            // A process reached over the socket only ever holds tokens.
            (Shares::Objects(_), SyncHome::Server(_)) => 0,
        }
    }
}

/// The sync objects a parent shares with a child it creates.
#[derive(Clone, Default)]
pub(crate) enum Shares {
    #[default]
    None,
    /// The objects themselves (the parent's table is in this host process).
    Objects(Vec<(u64, Arc<SyncObject>)>),
    /// A token the run's server keeps them under (the parent is a native child process).
    Token(u64),
}

/// A process's own sync objects.
enum SyncPort {
    /// Its table, in this host process; taken away when the process ends.
    Local(Mutex<Option<Arc<SyncTable>>>),
    Remote(Arc<RemoteSync>),
}

impl Tree {
    pub fn new(native: Option<NativeRun>, sync: SyncHome) -> Self {
        Tree {
            captured: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
            native,
            live: Arc::new(AtomicU64::new(0)),
            starting: std::sync::atomic::AtomicUsize::new(0),
            sync,
        }
    }

    pub fn sync(&self) -> &SyncHome {
        &self.sync
    }

    pub fn native(&self) -> Option<&NativeRun> {
        self.native.as_ref()
    }

    fn capture_dir(&self) -> Option<&std::path::Path> {
        self.native.as_ref().and_then(NativeRun::capture_dir)
    }

    /// How many processes of the tree started here are running.
    fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    fn add(&self, core: &Arc<ProcessCore>) {
        let mut started = lock(&self.started);
        // Forget ended processes now and then, so that the list stays near the live count.
        if started.len() >= 2 * self.live() as usize + 64 {
            started.retain(|w| w.upgrade().is_some_and(|c| c.is_alive()));
        }
        started.push(Arc::downgrade(core));
    }

    /// Ends the run: kills every process of the tree still running (orphans whose parent
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
                core.wait(None).await;
            }
        }
        // Processes of the run in other OS processes (orphaned grandchildren of native
        // children) die when the run's lifeline closes.
        if let Some(native) = &self.native {
            // Waiting for those processes blocks; keep it off the scheduler's threads.
            tokio::task::block_in_place(|| native.end());
        }
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
        match self.capture_dir() {
            Some(dir) => crate::output::read_capture_dir(dir),
            None => lock(&self.captured).clone(),
        }
    }
}

/// What a new [`ProcessCtx`] is made of.
pub(crate) struct NewCtx {
    pub shared: Arc<RunShared>,
    pub tree: Arc<Tree>,
    pub program: Option<Program>,
    pub me: Arc<ProcessCore>,
    pub name: String,
    pub daemon: bool,
    pub parent: Option<ParentLink>,
    pub output: ProcessOutput,
    /// The sync objects its parent shared with it.
    pub shares: Shares,
}

enum RunState {
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
    counted_in: OnceLock<[Arc<AtomicU64>; 2]>,
    state: Mutex<RunState>,
    exit: watch::Sender<Option<ExitStatus>>,
    /// The process's task while it waits to be spawned or driven by a join
    /// ([`crate::sched`]).
    deferred: Mutex<Option<crate::sched::Deferred>>,
}

impl ProcessCore {
    fn new(identity: Vec<u32>) -> Arc<Self> {
        Arc::new(ProcessCore {
            identity,
            pid: OnceLock::new(),
            counted_in: OnceLock::new(),
            state: Mutex::new(RunState::Unstarted),
            exit: watch::Sender::new(None),
            deferred: Mutex::new(None),
        })
    }

    /// A core for a process that is already running (the main process, or the host).
    pub fn running(identity: Vec<u32>, pid: u64) -> Arc<Self> {
        let core = Self::new(identity);
        let _ = core.pid.set(pid);
        *lock(&core.state) = RunState::Starting;
        core
    }

    /// Keeps the process's task until it is spawned or a join drives it.
    pub fn defer(&self, deferred: crate::sched::Deferred) {
        *lock(&self.deferred) = Some(deferred);
    }

    /// The process's task, if it has not been spawned yet.
    pub fn take_deferred(&self) -> Option<crate::sched::Deferred> {
        lock(&self.deferred).take()
    }

    /// Records the pid the backend gave the process (before it runs).
    pub fn set_pid(&self, pid: u64) {
        let _ = self.pid.set(pid);
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

    fn started(&self) -> bool {
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

    /// Records how the process ended and wakes everyone waiting for it. Called once, by
    /// [`supervise`]; later calls are ignored.
    pub fn exited(&self, status: ExitStatus) {
        if self.status().is_some() {
            return;
        }
        if let Some(counters) = self.counted_in.get() {
            for c in counters {
                c.fetch_sub(1, Ordering::Relaxed);
            }
        }
        // Publish the status before leaving the running state, so that a process is never
        // seen as neither alive nor ended.
        self.exit.send_replace(Some(status));
        // Dropping the control here releases the backend's means of signalling.
        let control = std::mem::replace(&mut *lock(&self.state), RunState::Exited);
        drop(control);
    }

    /// Waits until the process has ended or `timeout` passed; returns its status if ended.
    pub async fn wait(&self, timeout: Option<Duration>) -> Option<ExitStatus> {
        // Decided without a timer, so that it also works outside the scheduler.
        if let Some(status) = self.status() {
            return Some(status);
        }
        let mut rx = self.exit.subscribe();
        // A child whose task has not been spawned yet runs here, in the waiter's task.
        let mut helper = self.take_deferred().map(crate::sched::Helper::new);
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

/// A child process object held by its creator.
struct ChildEntry {
    core: Arc<ProcessCore>,
    program: Program,
    name: String,
    daemon: bool,
    target: String,
    args: Option<Vec<u8>>,
    closed: bool,
    /// How many guest-side references exist (see `release`).
    refs: u32,
    /// The captured output, once started in capture mode.
    captured: Option<Captured>,
    /// The sync objects the child will hold, until it starts.
    shares: Shares,
}

enum Object {
    Child(Box<ChildEntry>),
    Myself,
    Parent,
}

#[derive(Default)]
struct Objects {
    map: HashMap<u64, Object>,
    /// Started children, in start order (pruned lazily).
    started: Vec<u64>,
}

/// One running process's view: itself, its parent and the objects it created.
pub(crate) struct ProcessCtx {
    shared: Arc<RunShared>,
    tree: Arc<Tree>,
    /// The program this process runs; its children run it too. None for the library's
    /// root, whose children each name their program.
    program: Option<Program>,
    me: Arc<ProcessCore>,
    name: Mutex<String>,
    daemon: bool,
    parent: Option<ParentLink>,
    counter: AtomicU32,
    /// How many of this process's children are running.
    live_children: Arc<AtomicU64>,
    objects: Mutex<Objects>,
    self_handle: u64,
    parent_handle: Option<u64>,
    output: ProcessOutput,
    sync: SyncPort,
}

impl ProcessCtx {
    /// The context of a process: `me` is its core, `parent` its parent (none for a main
    /// process or the library's root).
    pub fn new(init: NewCtx) -> Arc<Self> {
        let NewCtx {
            shared,
            tree,
            program,
            me,
            name,
            daemon,
            parent,
            output,
            shares,
        } = init;
        let sync = match tree.sync() {
            SyncHome::Here(registry) => {
                let objects = match shares {
                    Shares::None => Vec::new(),
                    Shares::Objects(objects) => objects,
                    Shares::Token(token) => registry.claim(token),
                };
                SyncPort::Local(Mutex::new(Some(Arc::new(SyncTable::new(
                    registry.clone(),
                    &name,
                    objects,
                )))))
            }
            SyncHome::Server(remote) => SyncPort::Remote(remote.clone()),
        };
        let mut objects = Objects::default();
        let self_handle = shared.handle();
        objects.map.insert(self_handle, Object::Myself);
        let parent_handle = parent.as_ref().map(|_| {
            let h = shared.handle();
            objects.map.insert(h, Object::Parent);
            h
        });
        Arc::new(ProcessCtx {
            shared,
            tree,
            program,
            me,
            name: Mutex::new(name),
            daemon,
            parent,
            counter: AtomicU32::new(1),
            live_children: Arc::new(AtomicU64::new(0)),
            objects: Mutex::new(objects),
            self_handle,
            parent_handle,
            output,
            sync,
        })
    }

    pub fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    pub fn shared(&self) -> &Arc<RunShared> {
        &self.shared
    }

    pub fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    pub fn core(&self) -> &Arc<ProcessCore> {
        &self.me
    }

    pub fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub fn output(&self) -> &ProcessOutput {
        &self.output
    }

    pub fn current_process(&self) -> u64 {
        self.self_handle
    }

    pub fn parent_process(&self) -> Option<u64> {
        self.parent_handle
    }

    pub fn authkey(&self) -> Vec<u8> {
        self.shared.authkey().to_vec()
    }

    pub fn cpu_count(&self) -> u32 {
        *self.shared.cpu_count.get_or_init(|| {
            std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1)
        })
    }

    fn objects(&self) -> MutexGuard<'_, Objects> {
        lock(&self.objects)
    }

    /// `create`: a new unstarted child object named `Process-<identity>`, running a target
    /// of this process's own program.
    pub async fn create(
        &self,
        target: &str,
        args: Vec<u8>,
        shares: &[u64],
        name: Option<String>,
        daemon: Option<bool>,
        program: Option<&str>,
    ) -> Result<u64> {
        let program = match program {
            Some(other) => match self.shared.programs() {
                Some(programs) => programs.get(other)?,
                None => {
                    return Err(ProcessError::new(
                        ErrorKind::UnknownTarget,
                        format!("the host allows no other program (asked for '{other}')"),
                    ));
                }
            },
            None => self
                .program
                .clone()
                .ok_or_else(|| ProcessError::host_failure("this process has no program"))?,
        };
        self.check_create(&program, target, &args, name.as_deref())?;
        let shares = self.share(shares).await?;
        self.create_in(program, target, args, shares, name, daemon)
    }

    /// The sync objects `handles` name, set aside for a child.
    async fn share(&self, handles: &[u64]) -> Result<Shares> {
        if handles.is_empty() {
            return Ok(Shares::None);
        }
        match &self.sync {
            SyncPort::Local(table) => Ok(Shares::Objects(self.table(table)?.shares(handles)?)),
            SyncPort::Remote(remote) => {
                let token = remote
                    .client()
                    .await?
                    .call(Request::Share {
                        handles: handles.to_vec(),
                    })
                    .await?
                    .handle()?;
                Ok(Shares::Token(token))
            }
        }
    }

    fn table(&self, table: &Mutex<Option<Arc<SyncTable>>>) -> Result<Arc<SyncTable>> {
        lock(table)
            .clone()
            .ok_or_else(|| ProcessError::invalid_state("the process has ended"))
    }

    /// Carries out an operation on this process's sync objects.
    pub async fn sync_call(&self, request: Request) -> Result<Response> {
        match &self.sync {
            SyncPort::Local(table) => Ok(self.table(table)?.call(request).await),
            SyncPort::Remote(remote) => remote.client().await?.call(request).await,
        }
    }

    /// `queue-post`: a blocking put of `item` on queue `h`, carried out without the caller
    /// waiting for it when this process's objects are served from another OS process.
    pub async fn sync_post(&self, h: u64, item: Vec<u8>) -> Result<()> {
        match &self.sync {
            SyncPort::Local(_) => {
                let request = Request::QueuePut {
                    h,
                    item,
                    block: true,
                    timeout: None,
                };
                self.sync_call(request).await?.unit()
            }
            SyncPort::Remote(remote) => remote.post(h, item).await,
        }
    }

    /// Carries out an operation on this process's sync objects if that needs no waiting
    /// and no other OS process; none otherwise.
    pub fn sync_now(&self, request: Request) -> Option<Response> {
        match self.with_local_table(|table| Ok(table.serve_now(request).ok()))? {
            Ok(response) => response,
            Err(e) => Some(Response::Error(e.into())),
        }
    }

    /// `queue-try-put-small`: none when this process's objects are served from another OS
    /// process (the caller takes the general path).
    pub fn sync_try_put_small(&self, h: u64, item: &[u8]) -> Option<Result<bool>> {
        self.with_local_table(|table| table.try_put_small(h, item))
    }

    /// `queue-try-get-small`; none as for [`ProcessCtx::sync_try_put_small`].
    pub fn sync_try_get_small(&self, h: u64) -> Option<Result<Option<crate::sync::Taken>>> {
        self.with_local_table(|table| table.try_get_small(h))
    }

    /// `f` on this process's own object table, whose lock is held for the call (which
    /// never waits); none when the table is served from another OS process.
    fn with_local_table<T>(&self, f: impl FnOnce(&SyncTable) -> Result<T>) -> Option<Result<T>> {
        match &self.sync {
            SyncPort::Local(table) => Some(match lock(table).as_ref() {
                Some(table) => f(table),
                None => Err(ProcessError::invalid_state("the process has ended")),
            }),
            SyncPort::Remote(_) => None,
        }
    }

    /// The process has ended: it holds no sync objects any more (a lock it held is
    /// released, for the next owner to learn of).
    pub fn end_sync(&self) {
        if let SyncPort::Local(table) = &self.sync {
            lock(table).take();
        }
    }

    /// The checks of `create` that need no lookup.
    fn check_create(
        &self,
        program: &Program,
        target: &str,
        args: &[u8],
        name: Option<&str>,
    ) -> Result<()> {
        if !program.has_target(target) {
            return Err(ProcessError::new(
                ErrorKind::UnknownTarget,
                format!(
                    "program {} has no target named '{target}'",
                    program.display_name()
                ),
            ));
        }
        if let Some(n) = name {
            check_name(n)?;
        }
        let limit = self.shared.config.limits.args;
        if args.len() as u64 > limit {
            return Err(ProcessError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "start arguments of {} bytes exceed limit args = {limit} bytes",
                    args.len()
                ),
            ));
        }
        Ok(())
    }

    /// `create` for a target of `program`.
    pub fn create_in(
        &self,
        program: Program,
        target: &str,
        args: Vec<u8>,
        shares: Shares,
        name: Option<String>,
        daemon: Option<bool>,
    ) -> Result<u64> {
        self.check_create(&program, target, &args, name.as_deref())?;
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut identity = self.me.identity().to_vec();
        identity.push(count);
        let name = name.unwrap_or_else(|| default_name(&identity));
        let handle = self.shared.handle();
        let mut objects = self.objects();
        reap(&mut objects);
        objects.map.insert(
            handle,
            Object::Child(Box::new(ChildEntry {
                core: ProcessCore::new(identity),
                program,
                name,
                daemon: daemon.unwrap_or(self.daemon),
                target: target.to_string(),
                args: Some(args),
                closed: false,
                refs: 1,
                captured: None,
                shares,
            })),
        );
        Ok(handle)
    }

    /// Looks up a child for an operation only children allow.
    fn child<'a>(objects: &'a mut Objects, h: u64, not_child: &str) -> Result<&'a mut ChildEntry> {
        match objects.map.get_mut(&h) {
            Some(Object::Child(c)) if c.closed => Err(ProcessError::closed()),
            Some(Object::Child(c)) => Ok(c),
            _ => Err(ProcessError::not_a_child(not_child)),
        }
    }

    /// `start`: runs the child's target in a new process of the backend.
    pub fn start(self: &Arc<Self>, h: u64) -> Result<()> {
        self.tree.starting.fetch_add(1, Ordering::SeqCst);
        let _started = StartInProgress(&self.tree);
        let request = {
            let mut objects = self.objects();
            let child = Self::child(
                &mut objects,
                h,
                "can only start a process object created by current process",
            )?;
            if child.core.started() {
                return Err(ProcessError::invalid_state("cannot start a process twice"));
            }
            if self.shared.host_gone() {
                return Err(ProcessError::invalid_state(
                    "the host of this process has been dropped",
                ));
            }
            if self.daemon {
                return Err(ProcessError::invalid_state(
                    "daemonic processes are not allowed to have children",
                ));
            }
            let limits = &self.shared.config.limits;
            let depth = child.core.identity().len() as u64;
            if depth > limits.depth {
                return Err(ProcessError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "limit depth = {} reached: a process at depth {} cannot start children",
                        limits.depth,
                        depth - 1
                    ),
                ));
            }
            let live_children = self.live_children.load(Ordering::Relaxed);
            if live_children >= limits.children {
                return Err(ProcessError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "limit children = {} reached: this process has {live_children} live children",
                        limits.children
                    ),
                ));
            }
            let live = self.tree.live();
            if live >= limits.processes {
                return Err(ProcessError::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "limit processes = {} reached: the run has {live} live processes",
                        limits.processes
                    ),
                ));
            }
            *lock(&child.core.state) = RunState::Starting;
            // Counted from now on; `exited` uncounts it, however it ends.
            self.live_children.fetch_add(1, Ordering::Relaxed);
            self.tree.live.fetch_add(1, Ordering::Relaxed);
            let _ = child
                .core
                .counted_in
                .set([self.live_children.clone(), self.tree.live.clone()]);
            let output = self.shared.output_for(&self.tree, &child.name);
            child.captured = output.captured();
            SpawnRequest {
                core: child.core.clone(),
                name: child.name.clone(),
                daemon: child.daemon,
                target: child.target.clone(),
                args: child.args.take().unwrap_or_default(),
                parent: ParentLink {
                    core: self.me.clone(),
                    name: self.name(),
                    daemon: self.daemon,
                },
                program: child.program.clone(),
                tree: self.tree.clone(),
                output,
                shares: child.shares.clone(),
            }
        };
        let core = request.core.clone();
        match self.shared.backend.spawn(request, &self.shared) {
            Ok(spawned) => {
                let _ = core.pid.set(spawned.pid);
                self.tree.add(&core);
                let mut state = lock(&core.state);
                if matches!(*state, RunState::Starting) {
                    *state = RunState::Running(spawned.control);
                }
                drop(state);
                let mut objects = self.objects();
                objects.started.push(h);
                if let Some(Object::Child(child)) = objects.map.get_mut(&h) {
                    child.shares = Shares::None;
                }
                Ok(())
            }
            Err(e) => {
                *lock(&core.state) = RunState::Unstarted;
                self.live_children.fetch_sub(1, Ordering::Relaxed);
                self.tree.live.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The process `h` names for `join`, `wait`: a started child or the parent.
    fn waitable(&self, h: u64, not_child: &str, not_started: &str) -> Result<Arc<ProcessCore>> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Parent) => Ok(self.parent_core()),
            _ => {
                let child = Self::child(&mut objects, h, not_child)?;
                if !child.core.started() {
                    return Err(ProcessError::invalid_state(not_started));
                }
                Ok(child.core.clone())
            }
        }
    }

    fn parent_core(&self) -> Arc<ProcessCore> {
        match &self.parent {
            Some(p) => p.core.clone(),
            None => self.me.clone(),
        }
    }

    /// `join(timeout)`.
    pub async fn join(&self, h: u64, timeout: Option<Duration>) -> Result<()> {
        let core = self.waitable(
            h,
            "can only join a child process",
            "can only join a started process",
        )?;
        core.wait(timeout).await;
        Ok(())
    }

    /// `is_alive()`.
    pub fn is_alive(&self, h: u64) -> Result<bool> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself) => Ok(true),
            Some(Object::Parent) => Ok(self.parent_core().is_alive()),
            _ => Ok(
                Self::child(&mut objects, h, "can only test a child process")?
                    .core
                    .is_alive(),
            ),
        }
    }

    /// `exitcode`.
    pub fn exitcode(&self, h: u64) -> Result<Option<i32>> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself | Object::Parent) => Ok(None),
            _ => Ok(
                Self::child(&mut objects, h, "can only query a child process")?
                    .core
                    .status()
                    .map(ExitStatus::exitcode),
            ),
        }
    }

    /// The exit status of a child (library use).
    pub fn status(&self, h: u64) -> Result<Option<ExitStatus>> {
        let mut objects = self.objects();
        Ok(
            Self::child(&mut objects, h, "can only query a child process")?
                .core
                .status(),
        )
    }

    /// `pid`.
    pub fn pid(&self, h: u64) -> Result<Option<u64>> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself) => Ok(self.me.pid()),
            Some(Object::Parent) => Ok(self.parent_core().pid()),
            _ => Ok(
                Self::child(&mut objects, h, "can only query a child process")?
                    .core
                    .pid(),
            ),
        }
    }

    /// `name`.
    pub fn name_of(&self, h: u64) -> Result<String> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself) => Ok(self.name()),
            Some(Object::Parent) => Ok(self
                .parent
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default()),
            _ => Ok(
                Self::child(&mut objects, h, "can only query a child process")?
                    .name
                    .clone(),
            ),
        }
    }

    /// `name = ...`.
    pub fn set_name(&self, h: u64, name: String) -> Result<()> {
        check_name(&name)?;
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself) => *lock(&self.name) = name,
            Some(Object::Parent) => {
                return Err(ProcessError::not_a_child(
                    "can only rename a child process or the current process",
                ));
            }
            _ => Self::child(&mut objects, h, "can only rename a child process")?.name = name,
        }
        Ok(())
    }

    /// `daemon`.
    pub fn daemon_of(&self, h: u64) -> Result<bool> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Myself) => Ok(self.daemon),
            Some(Object::Parent) => Ok(self.parent.as_ref().is_some_and(|p| p.daemon)),
            _ => Ok(Self::child(&mut objects, h, "can only query a child process")?.daemon),
        }
    }

    /// `daemon = ...`.
    pub fn set_daemon(&self, h: u64, daemon: bool) -> Result<()> {
        let mut objects = self.objects();
        let child = Self::child(&mut objects, h, "can only set daemon on a child process")?;
        if child.core.started() {
            return Err(ProcessError::invalid_state("process has already started"));
        }
        child.daemon = daemon;
        Ok(())
    }

    /// `terminate()` / `kill()`.
    pub fn signal(&self, h: u64, sig: Signal) -> Result<()> {
        let (not_child, not_started) = match sig {
            Signal::Term => (
                "can only terminate a child process",
                "can only terminate a started process",
            ),
            Signal::Kill | Signal::Other(_) => (
                "can only kill a child process",
                "can only kill a started process",
            ),
        };
        let mut objects = self.objects();
        let child = Self::child(&mut objects, h, not_child)?;
        if !child.core.started() {
            return Err(ProcessError::invalid_state(not_started));
        }
        child.core.signal(sig);
        Ok(())
    }

    /// `close()`.
    pub fn close(&self, h: u64) -> Result<()> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Child(c)) => {
                if c.core.is_alive() {
                    return Err(ProcessError::invalid_state(
                        "Cannot close a process while it is still running. You should first \
                         call join() or terminate().",
                    ));
                }
                c.closed = true;
                c.args = None;
                c.shares = Shares::None;
                Ok(())
            }
            _ => Err(ProcessError::not_a_child("can only close a child process")),
        }
    }

    /// The guest dropped one reference to `h`.
    pub fn release(&self, h: u64) {
        let mut objects = self.objects();
        if let Some(Object::Child(c)) = objects.map.get_mut(&h) {
            c.refs = c.refs.saturating_sub(1);
            if c.refs == 0 && !c.core.is_alive() {
                objects.map.remove(&h);
                objects.started.retain(|&s| s != h);
            }
        }
    }

    /// `sentinel`.
    pub fn sentinel(&self, h: u64) -> Result<u64> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Parent) => Ok(h),
            Some(Object::Myself) => Err(ProcessError::invalid_state(
                "the current process has no sentinel",
            )),
            _ => {
                let child = Self::child(&mut objects, h, "can only query a child process")?;
                if !child.core.started() {
                    return Err(ProcessError::invalid_state("process not started"));
                }
                Ok(h)
            }
        }
    }

    /// `wait(objects, timeout)`: the objects that are ready, in the order given: process
    /// sentinels and the handles of connections and queues together.
    pub async fn wait(&self, objects: &[u64], timeout: Option<Duration>) -> Result<Vec<u64>> {
        let (syncs, sentinels): (Vec<u64>, Vec<u64>) =
            objects.iter().partition(|&&h| is_sync_handle(h));
        if syncs.is_empty() {
            return self.wait_processes(&sentinels, timeout).await;
        }
        let cores = self.sentinel_cores(&sentinels)?;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let poll = Request::Ready {
            handles: syncs.clone(),
            timeout: Some(0),
        };
        let mut ready_syncs = self.sync_call(poll).await?.handles()?;
        let ended = |cores: &[Arc<ProcessCore>]| cores.iter().any(|c| c.status().is_some());
        if ready_syncs.is_empty() && !ended(&cores) && timeout != Some(Duration::ZERO) {
            let any_ended = async {
                if cores.is_empty() {
                    std::future::pending::<()>().await;
                }
                futures::future::select_all(cores.iter().map(|c| Box::pin(c.wait(None)))).await;
            };
            let blocking = Request::Ready {
                handles: syncs.clone(),
                timeout: timeout.map(nanos),
            };
            let answer = match &self.sync {
                SyncPort::Local(table) => {
                    let table = self.table(table)?;
                    tokio::select! {
                        r = table.serve(blocking) => Some(r),
                        () = any_ended => None,
                    }
                }
                SyncPort::Remote(remote) => Some(
                    remote
                        .client()
                        .await?
                        .call_cancellable(blocking, any_ended)
                        .await?,
                ),
            };
            ready_syncs = match answer {
                Some(Response::Cancelled) | None => {
                    let poll = Request::Ready {
                        handles: syncs.clone(),
                        timeout: Some(0),
                    };
                    self.sync_call(poll).await?.handles()?
                }
                Some(r) => r.handles()?,
            };
        }
        let ready_sentinels: Vec<u64> = sentinels
            .iter()
            .zip(&cores)
            .filter(|(_, c)| c.status().is_some())
            .map(|(s, _)| *s)
            .collect();
        Ok(objects
            .iter()
            .filter(|h| ready_syncs.contains(h) || ready_sentinels.contains(h))
            .copied()
            .collect())
    }

    /// The processes `sentinels` name.
    fn sentinel_cores(&self, sentinels: &[u64]) -> Result<Vec<Arc<ProcessCore>>> {
        let objects = self.objects();
        sentinels
            .iter()
            .map(|s| match objects.map.get(s) {
                Some(Object::Parent) => Ok(self.parent_core()),
                Some(Object::Child(c)) if !c.closed && c.core.started() => Ok(c.core.clone()),
                _ => Err(ProcessError::invalid_argument(format!(
                    "{s} is not a sentinel of this process"
                ))),
            })
            .collect()
    }

    /// `wait` over process sentinels only.
    async fn wait_processes(
        &self,
        sentinels: &[u64],
        timeout: Option<Duration>,
    ) -> Result<Vec<u64>> {
        let cores = self.sentinel_cores(sentinels)?;
        let ready = |cores: &[Arc<ProcessCore>]| -> Vec<u64> {
            sentinels
                .iter()
                .zip(cores)
                .filter(|(_, c)| c.status().is_some())
                .map(|(s, _)| *s)
                .collect()
        };
        let now = ready(&cores);
        if !now.is_empty() || cores.is_empty() || timeout == Some(Duration::ZERO) {
            if cores.is_empty() {
                if let Some(t) = timeout {
                    tokio::time::sleep(t).await;
                } else {
                    std::future::pending::<()>().await;
                }
            }
            return Ok(now);
        }
        let any = futures::future::select_all(cores.iter().map(|c| Box::pin(c.wait(None))));
        match timeout {
            None => {
                any.await;
            }
            Some(t) => {
                let _ = tokio::time::timeout(t, any).await;
            }
        }
        Ok(ready(&cores))
    }

    /// `active_children()`: started children still running, in start order; each returned
    /// handle counts as one more guest reference.
    pub fn active_children(&self) -> Vec<u64> {
        let mut objects = self.objects();
        reap(&mut objects);
        let Objects { map, started } = &mut *objects;
        let mut live = Vec::new();
        for h in started.iter() {
            if let Some(Object::Child(c)) = map.get_mut(h)
                && c.core.is_alive()
                && !c.closed
            {
                c.refs += 1;
                live.push(*h);
            }
        }
        live
    }

    /// The captured output of child `h`, if output is captured.
    pub fn captured(&self, h: u64) -> Result<Option<Captured>> {
        let mut objects = self.objects();
        Ok(
            Self::child(&mut objects, h, "can only query a child process")?
                .captured
                .clone(),
        )
    }

    fn live_children(&self) -> Vec<(bool, Arc<ProcessCore>)> {
        let objects = self.objects();
        objects
            .started
            .iter()
            .filter_map(|h| match objects.map.get(h) {
                Some(Object::Child(c)) if c.core.is_alive() => Some((c.daemon, c.core.clone())),
                _ => None,
            })
            .collect()
    }

    /// CPython's exit handler, run when a process's function has ended by itself (returned,
    /// exit(n), panic or trap): terminate the daemonic children, then join all children.
    pub async fn exit_handler(&self) {
        let children = self.live_children();
        for (daemon, core) in &children {
            if *daemon {
                core.signal(Signal::Term);
            }
        }
        for (_, core) in &children {
            core.wait(None).await;
        }
    }
}

/// A start in progress, counted in its tree's `starting` while it lives.
struct StartInProgress<'a>(&'a Tree);

impl Drop for StartInProgress<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Forget children that have ended and that the guest no longer refers to.
fn reap(objects: &mut Objects) {
    let Objects { map, started } = objects;
    started.retain(|h| match map.get(h) {
        Some(Object::Child(c)) if c.refs == 0 && !c.core.is_alive() => {
            map.remove(h);
            false
        }
        Some(Object::Child(_)) => true,
        _ => false,
    });
}

fn default_name(identity: &[u32]) -> String {
    let parts: Vec<String> = identity.iter().map(u32::to_string).collect();
    format!("Process-{}", parts.join(":"))
}

fn check_name(name: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(ProcessError::invalid_argument(
            "a process name may not contain a NUL character",
        ));
    }
    // A newline or escape in a name could forge another process's lines in prefixed output.
    if name.chars().any(char::is_control) {
        return Err(ProcessError::invalid_argument(
            "a process name may not contain control characters",
        ));
    }
    Ok(())
}

/// Runs one process to its end and publishes how it ended: `body` runs the guest's
/// function and returns its status; then the exit handler runs. A signal ends both at
/// once and gives the signal's status; as in CPython, the process's children then run on
/// as orphans (their `parent_process()` is no longer alive) until they end or the run ends.
pub(crate) async fn supervise(
    ctx: Arc<ProcessCtx>,
    body: impl Future<Output = ExitStatus>,
    mut signals: watch::Receiver<Option<Signal>>,
) -> ExitStatus {
    let run = async {
        let status = body.await;
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
    // Before anyone can learn that the process ended, it lets go of its objects.
    ctx.end_sync();
    ctx.core().exited(status);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_identity() {
        assert_eq!(default_name(&[1]), "Process-1");
        assert_eq!(default_name(&[2, 3]), "Process-2:3");
        assert_eq!(default_name(&[1, 1, 4]), "Process-1:1:4");
    }

    #[test]
    fn names_with_nul_are_rejected() {
        assert_eq!(
            check_name("a\0b").unwrap_err().message,
            "a process name may not contain a NUL character"
        );
        assert!(check_name("worker").is_ok());
    }
}
