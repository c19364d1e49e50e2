//! A process's one handle on its sync objects ([`Client`]), whatever serves them: its own
//! table in this host process, or the run's object server reached over a socket (a native
//! child process, [`super::remote`]). The run's side of the same choice is a [`Link`].

use super::remote::Connection;
use super::word::{self, Arena, Give, Take};
use super::{Answer, Registry, Request, Response, SharedObjects, SlotKind, SyncTable, Taken};
use crate::error::ProcessError;
use crate::events::ProcessEvent;
use crate::lock;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// How long a native process's `queue-post` may wait to be sent with a later call.
const POST_DELAY: Duration = Duration::from_millis(1);

/// The most bytes of posts a native process keeps unsent; the post that reaches it sends
/// them all, waiting for room in the socket.
const POST_BUFFER: usize = 64 << 10;

/// Where the sync objects of a run live, seen from one OS process.
#[derive(Clone)]
pub(crate) enum Link {
    /// In this host process (the run's root).
    Here(Arc<Registry>),
    /// In the run's root host, reached over its socket (a native child process).
    Server(Arc<Remote>),
}

/// The sync objects a parent shares with a child it creates.
#[derive(Clone, Default)]
pub(crate) enum Shares {
    #[default]
    None,
    /// The objects themselves (the parent's table is in this host process).
    Objects(SharedObjects),
    /// A token the run's server keeps them under (the parent is a native child process).
    Token(u64),
}

/// A native child process's way to the run's object server: connected on first use, or
/// at start when its parent shared objects with it.
pub(crate) struct Remote {
    socket: PathBuf,
    name: String,
    token: u64,
    connection: tokio::sync::OnceCell<Connection>,
    /// The handles of this process's queues, kept as the server's table changes through
    /// this process's own calls, so that the fast calls (which cannot wait for the server)
    /// answer a bad handle as the server would.
    queues: Mutex<HashSet<u64>>,
    /// A second connection for the bookkeeping of this process's own children, so that it
    /// never waits behind a blocking call of the guest.
    control: tokio::sync::OnceCell<Connection>,
    /// The lifecycle events of this OS process's children on their way to the root host,
    /// in order, over `control` (started on the first).
    events: Mutex<Option<Forwarder>>,
    /// What the server told of this process's locks, events and small shared blocks, by
    /// handle: where their state is, for this process to change it itself when nobody
    /// waits (none: every call goes to the server).
    slots: Mutex<HashMap<u64, Option<Fast>>>,
    /// The run's lock arena, mapped on first use (none: it cannot be).
    arena: std::sync::OnceLock<Option<Arc<Arena>>>,
    /// The token of this process's table in the server, which owns its locks.
    owner: std::sync::atomic::AtomicU64,
}

/// A lock, event or small shared block whose state is in the run's arena.
#[derive(Clone, Copy)]
struct Fast {
    object: SlotKind,
    index: u32,
}

/// The task that sends lifecycle events to the root host, and its queue.
struct Forwarder {
    queue: tokio::sync::mpsc::UnboundedSender<ProcessEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Remote {
    /// The link of process `name` to the server at `socket`; `token` names the objects its
    /// parent shared (0: none).
    pub fn new(socket: PathBuf, name: String, token: u64) -> Arc<Self> {
        Arc::new(Remote {
            socket,
            name,
            token,
            connection: tokio::sync::OnceCell::new(),
            queues: Mutex::new(HashSet::new()),
            control: tokio::sync::OnceCell::new(),
            events: Mutex::new(None),
            slots: Mutex::new(HashMap::new()),
            arena: std::sync::OnceLock::new(),
            owner: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Sends `event` to the root host, after the events sent before it.
    fn forward(self: &Arc<Self>, event: ProcessEvent) {
        let mut events = lock(&self.events);
        if events.is_none() {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let me = self.clone();
            let task = runtime.spawn(async move {
                while let Some(event) = rx.recv().await {
                    if let Ok(control) = me.control().await {
                        let _ = control.call(Request::Lifecycle(event)).await;
                    }
                }
            });
            *events = Some(Forwarder { queue, task });
        }
        if let Some(forwarder) = events.as_ref() {
            let _ = forwarder.queue.send(event);
        }
    }

    /// Waits (at most `limit`) until the events forwarded so far have reached the root
    /// host.
    async fn flush_events(&self, limit: Duration) {
        let forwarder = lock(&self.events).take();
        if let Some(Forwarder { queue, task }) = forwarder {
            drop(queue);
            let _ = tokio::time::timeout(limit, task).await;
        }
    }

    /// Connects now if the parent shared objects: until they are claimed, the run's server
    /// keeps them for this process.
    pub async fn claim_shares(&self) -> Result<()> {
        if self.token != 0 {
            self.connection().await?;
        }
        Ok(())
    }

    async fn connection(&self) -> Result<&Connection> {
        self.connection
            .get_or_try_init(|| async {
                let (connection, queues) =
                    Connection::connect(&self.socket, &self.name, self.token).await?;
                lock(&self.queues).extend(queues);
                Ok(connection)
            })
            .await
    }

    async fn control(&self) -> Result<&Connection> {
        self.control
            .get_or_try_init(|| async { Ok(Connection::connect(&self.socket, "", 0).await?.0) })
            .await
    }

    /// Carries out `request` on the server, keeping [`Remote::queues`] up to date; an
    /// operation on a lock, event or small shared block that needs neither waiting nor a
    /// report, here ([`Remote::fast`]).
    async fn call(&self, request: Request) -> Result<Response> {
        let connection = self.connection().await?;
        if let Some(h) = fast_handle(&request) {
            if !lock(&self.slots).contains_key(&h) {
                self.learn(connection, h).await?;
            }
            if let Some(response) = self.fast(connection, &request) {
                return Ok(response);
            }
        }
        if let Request::Close { h } = request {
            lock(&self.slots).remove(&h);
        }
        let change = match request {
            Request::QueueNew { .. } | Request::JoinableQueueNew { .. } => QueueChange::New,
            Request::Close { h } => QueueChange::Closed(h),
            _ => QueueChange::None,
        };
        let response = match connection.call(request).await? {
            Response::Adopted { queues, response } => {
                lock(&self.queues).extend(queues);
                *response
            }
            response => response,
        };
        match (change, &response) {
            (QueueChange::New, Response::Handle(h)) => {
                lock(&self.queues).insert(*h);
            }
            (QueueChange::Closed(h), _) => {
                lock(&self.queues).remove(&h);
            }
            _ => {}
        }
        Ok(response)
    }

    /// Asks the server where the state of lock, event or shared block `h` is (a handle
    /// that is none of these is left for the call itself to report).
    async fn learn(&self, connection: &Connection, h: u64) -> Result<()> {
        if let Response::Slot {
            object,
            index,
            token,
        } = connection.call(Request::SlotInfo { h }).await?
        {
            self.owner
                .store(token, std::sync::atomic::Ordering::Relaxed);
            let arena = self
                .arena
                .get_or_init(|| Arena::open(&self.socket.with_file_name(super::ARENA_FILE)).ok());
            let fast = index
                .filter(|i| arena.as_ref().is_some_and(|a| a.slot(*i).is_some()))
                .map(|index| Fast { object, index });
            lock(&self.slots).insert(h, fast);
        }
        Ok(())
    }

    /// An operation on a lock, event or small shared block in the arena carried out here,
    /// without waiting; none when the server must carry it out (someone waits there, it
    /// would wait, it is an error, or posts not sent yet must reach the server first).
    fn fast(&self, connection: &Connection, request: &Request) -> Option<Response> {
        let h = fast_handle(request)?;
        let fast = (*lock(&self.slots).get(&h)?)?;
        if connection.has_posts() {
            return None;
        }
        let slot = self.arena.get()?.as_ref()?.slot(fast.index)?;
        let me = self.owner.load(std::sync::atomic::Ordering::Relaxed);
        match (request, fast.object) {
            (Request::LockAcquire { .. }, SlotKind::Lock { kind, .. }) => {
                (word::take(slot, kind, me, true) == Take::Taken).then_some(Response::Bool(true))
            }
            (Request::LockRelease { .. }, SlotKind::Lock { kind, initial }) => matches!(
                word::give(slot, kind, initial, me, true),
                Give::Given | Give::Kept
            )
            .then_some(Response::Unit),
            (Request::EventSet { .. }, SlotKind::Event) => {
                word::set_event(slot, true).then_some(Response::Unit)
            }
            (Request::EventClear { .. }, SlotKind::Event) => {
                word::clear_event(slot);
                Some(Response::Unit)
            }
            (Request::EventIsSet { .. }, SlotKind::Event) => {
                Some(Response::Bool(word::event_is_set(slot)))
            }
            (Request::EventWait { .. }, SlotKind::Event) => {
                word::event_is_set(slot).then_some(Response::Bool(true))
            }
            // An error (a range outside the block) is the server's to give.
            (&Request::MemoryRead { offset, len, .. }, SlotKind::Memory { len: size }) => {
                word::read_block(slot, size, offset, len)
                    .ok()
                    .map(Response::Bytes)
            }
            (Request::MemoryWrite { offset, bytes, .. }, SlotKind::Memory { len: size }) => {
                word::write_block(slot, size, *offset, bytes)
                    .ok()
                    .map(|()| Response::Unit)
            }
            // A request of the other kind's: the server's error.
            _ => None,
        }
    }

    /// The answer of a fast call on `h` that the server need not see: the server's error
    /// when `h` is not one of this process's queues; none when the call must go to the
    /// server.
    fn not_a_queue(&self, h: u64) -> Option<ProcessError> {
        (!lock(&self.queues).contains(&h))
            .then(|| ProcessError::invalid_argument(format!("{h} is not a queue of this process")))
    }

    /// Posts a put of `item` on queue `h` ([`Connection::post`]): it goes with the next
    /// call, or by a flush at most [`POST_DELAY`] later.
    async fn post(self: &Arc<Self>, h: u64, item: Vec<u8>) -> Result<()> {
        let connection = self.connection().await?;
        match connection.post(h, item)? {
            (0, _) => {
                let me = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(POST_DELAY).await;
                    me.flush().await;
                });
            }
            // A process that posts faster than the server takes them waits here, for room
            // in the socket, instead of piling up posts in memory.
            (_, waiting) if waiting >= POST_BUFFER => connection.flush().await?,
            _ => {}
        }
        Ok(())
    }

    /// Sends the posts not sent yet (a lost connection is the next call's error).
    async fn flush(&self) {
        if let Some(connection) = self.connection.get() {
            let _ = connection.flush().await;
        }
    }
}

impl Link {
    /// Publishes a lifecycle event of a process of this run, in the run's root host.
    pub fn emit(&self, event: ProcessEvent) {
        match self {
            Link::Here(registry) => registry.publish(event),
            Link::Server(remote) => remote.forward(event),
        }
    }

    /// Waits (at most `limit`) until the events emitted so far have been published.
    pub async fn flush_events(&self, limit: Duration) {
        if let Link::Server(remote) = self {
            remote.flush_events(limit).await;
        }
    }

    /// The client of a process of this run called `name`, holding the objects `shares`
    /// its parent gave it.
    pub fn client(&self, name: &str, shares: Shares) -> Client {
        let flavor = match self {
            Link::Here(registry) => {
                let objects = match shares {
                    Shares::None => Vec::new(),
                    Shares::Objects(objects) => objects,
                    Shares::Token(token) => registry.claim(token),
                };
                let table = SyncTable::new(registry.clone(), name, objects);
                Flavor::Local(Mutex::new(Some(Arc::new(table))))
            }
            Link::Server(remote) => Flavor::Remote(remote.clone()),
        };
        Client { flavor }
    }

    /// Waits until the server has dropped every connection of OS process `pid` (so a lock
    /// it held is released before anyone learns that it ended), then drops the share
    /// `token` if the process never claimed it.
    pub async fn process_gone(&self, pid: u32, token: u64) {
        match self {
            Link::Here(registry) => {
                registry.gone(pid).await;
                registry.claim(token);
            }
            Link::Server(remote) => {
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
    pub fn token(&self, shares: &Shares) -> u64 {
        match (shares, self) {
            (Shares::None, _) => 0,
            (Shares::Token(t), _) => *t,
            (Shares::Objects(objects), Link::Here(registry)) => registry.share(objects.clone()),
            // A process reached over the socket only ever holds tokens.
            (Shares::Objects(_), Link::Server(_)) => 0,
        }
    }
}

/// The object of `request` if it is an operation a native child may carry out itself
/// ([`Remote::fast`]).
fn fast_handle(request: &Request) -> Option<u64> {
    match *request {
        Request::LockAcquire { h, .. }
        | Request::LockRelease { h }
        | Request::EventSet { h }
        | Request::EventClear { h }
        | Request::EventIsSet { h }
        | Request::EventWait { h, .. }
        | Request::MemoryRead { h, .. }
        | Request::MemoryWrite { h, .. } => Some(h),
        _ => None,
    }
}

/// How a call changes which handles are queues.
enum QueueChange {
    None,
    New,
    Closed(u64),
}

/// A process's handle on its own sync objects.
pub(crate) struct Client {
    flavor: Flavor,
}

enum Flavor {
    /// Its table, in this host process; taken away when the process ends.
    Local(Mutex<Option<Arc<SyncTable>>>),
    Remote(Arc<Remote>),
}

fn ended() -> ProcessError {
    ProcessError::invalid_state("the process has ended")
}

impl Client {
    fn table(table: &Mutex<Option<Arc<SyncTable>>>) -> Result<Arc<SyncTable>> {
        lock(table).clone().ok_or_else(ended)
    }

    /// Carries out `request`; its answer is a `T`.
    pub async fn call<T: Answer>(&self, request: Request) -> Result<T> {
        match &self.flavor {
            Flavor::Local(table) => Self::table(table)?.call(request).await.answer(),
            Flavor::Remote(remote) => remote.call(request).await?.answer(),
        }
    }

    /// `queue-post`: a blocking put of `item` on queue `h`, carried out without the caller
    /// waiting for it when the objects are served from another OS process.
    pub async fn post(&self, h: u64, item: Vec<u8>) -> Result<()> {
        match &self.flavor {
            Flavor::Local(_) => {
                let request = Request::QueuePut {
                    h,
                    item,
                    block: true,
                    timeout: None,
                };
                self.call(request).await
            }
            Flavor::Remote(remote) => remote.post(h, item).await,
        }
    }

    /// Carries out `request` if that needs no waiting and no other OS process; none
    /// otherwise.
    pub fn now(&self, request: Request) -> Option<Response> {
        if let Flavor::Remote(remote) = &self.flavor {
            return match request {
                Request::QueuePut { h, .. } | Request::QueueGet { h, .. } => {
                    remote.not_a_queue(h).map(Response::Error)
                }
                _ => None,
            };
        }
        match self.with_local_table(|table| Ok(table.serve_now(request).ok()))? {
            Ok(response) => response,
            Err(e) => Some(Response::Error(e)),
        }
    }

    /// `queue-try-put-small`: none when the objects are served from another OS process
    /// (the caller takes the general path).
    pub fn try_put_small(&self, h: u64, item: &[u8]) -> Option<Result<bool>> {
        if let Flavor::Remote(remote) = &self.flavor {
            return remote.not_a_queue(h).map(Err);
        }
        self.with_local_table(|table| table.try_put_small(h, item))
    }

    /// `queue-try-get-small`; none as for [`Client::try_put_small`].
    pub fn try_get_small(&self, h: u64) -> Option<Result<Option<Taken>>> {
        if let Flavor::Remote(remote) = &self.flavor {
            return remote.not_a_queue(h).map(Err);
        }
        self.with_local_table(|table| table.try_get_small(h))
    }

    /// `f` on the process's own table, whose lock is held for the call (which never
    /// waits); none when the table is served from another OS process.
    fn with_local_table<T>(&self, f: impl FnOnce(&SyncTable) -> Result<T>) -> Option<Result<T>> {
        match &self.flavor {
            Flavor::Local(table) => Some(match lock(table).as_ref() {
                Some(table) => f(table),
                None => Err(ended()),
            }),
            Flavor::Remote(_) => None,
        }
    }

    /// The objects `handles` name, set aside for a child about to be created.
    pub async fn share(&self, handles: &[u64]) -> Result<Shares> {
        if handles.is_empty() {
            return Ok(Shares::None);
        }
        match &self.flavor {
            Flavor::Local(table) => Ok(Shares::Objects(Self::table(table)?.shares(handles)?)),
            Flavor::Remote(remote) => {
                let handles = handles.to_vec();
                let connection = remote.connection().await?;
                let token = connection
                    .call(Request::Share { handles })
                    .await?
                    .answer()?;
                Ok(Shares::Token(token))
            }
        }
    }

    /// Which of `handles` (connections and queues) would not block on receive, waiting up
    /// to `timeout` for one to be; when `cancel` completes first, those ready then.
    pub async fn ready(
        &self,
        handles: &[u64],
        timeout: Option<Duration>,
        cancel: impl Future<Output = ()>,
    ) -> Result<Vec<u64>> {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let blocking = Request::Ready {
            handles: handles.to_vec(),
            timeout: timeout.map(nanos),
        };
        let answer = match &self.flavor {
            Flavor::Local(table) => {
                let table = Self::table(table)?;
                tokio::select! {
                    r = table.serve(blocking) => Some(r),
                    () = cancel => None,
                }
            }
            Flavor::Remote(remote) => {
                let connection = remote.connection().await?;
                Some(connection.call_cancellable(blocking, cancel).await?)
            }
        };
        match answer {
            Some(Response::Cancelled) | None => self.ready_now(handles).await,
            Some(r) => r.answer(),
        }
    }

    /// Which of `handles` would not block on receive now.
    pub async fn ready_now(&self, handles: &[u64]) -> Result<Vec<u64>> {
        let poll = Request::Ready {
            handles: handles.to_vec(),
            timeout: Some(0),
        };
        self.call(poll).await
    }

    /// The process has ended: it holds no objects any more. A local table goes (a lock it
    /// held is released, for the next owner to learn of); a remote process's posts not
    /// sent yet are sent, so that they are in their queues before its end is seen.
    pub async fn release(&self) {
        match &self.flavor {
            Flavor::Local(table) => drop(lock(table).take()),
            Flavor::Remote(remote) => remote.flush().await,
        }
    }
}
