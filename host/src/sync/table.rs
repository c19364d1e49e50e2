//! A process's table of the objects it holds, and the one place where every request on
//! them is carried out ([`SyncTable::serve`]).

use super::coord::{BarrierObj, CondObj, DictObj, ListObj, MemoryObj, Unfinished};
use super::objects::{
    Channel, ConnEnd, EventObj, Item, Kind, LockObj, Object, Owner, Registry, SharedObjects, Taken,
    Waiting, deadline,
};
use super::{Request, Response, SlotKind};
use crate::error::{ErrorKind, ProcessError};
use crate::lock;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// Hashes handles (distinct u64s, chosen by the host) with one multiplication: the table
/// is looked up on every operation, and its keys need no protection from collisions.
#[derive(Clone, Copy, Default)]
struct HandleHasher;

impl std::hash::BuildHasher for HandleHasher {
    type Hasher = HandleHash;

    fn build_hasher(&self) -> HandleHash {
        HandleHash(0)
    }
}

struct HandleHash(u64);

impl std::hash::Hasher for HandleHash {
    fn finish(&self) -> u64 {
        // Fibonacci hashing spreads consecutive handles over the high bits too.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The objects one process holds.
pub(crate) struct SyncTable {
    registry: Arc<Registry>,
    owner: Owner,
    objects: Mutex<HashMap<u64, Arc<Object>, HandleHasher>>,
    /// Queues taken with items and not yet reported ([`SyncTable::take_adopted`]); none
    /// is kept unless the table reports them.
    adopted: Mutex<Option<Vec<u64>>>,
}

impl Drop for SyncTable {
    fn drop(&mut self) {
        let objects = std::mem::take(self.objects.get_mut().unwrap_or_else(|e| e.into_inner()));
        for object in objects.values() {
            abandon(object, &self.owner);
        }
    }
}

impl SyncTable {
    /// The table of process `name`, holding `objects` (shared by its parent).
    pub fn new(registry: Arc<Registry>, name: &str, objects: Vec<(u64, Arc<Object>)>) -> Self {
        let token = registry.next_owner.fetch_add(1, Ordering::Relaxed);
        SyncTable {
            registry,
            owner: Owner {
                token,
                name: name.to_string(),
            },
            objects: Mutex::new(objects.into_iter().collect()),
            adopted: Mutex::new(None),
        }
    }

    #[cfg(test)]
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn insert(&self, (id, object): (u64, Arc<Object>)) -> u64 {
        lock(&self.objects).insert(id, object);
        id
    }

    /// The object `h` names; `what` is the noun phrase of the error ("a queue").
    fn object(&self, h: u64, what: &str) -> Result<Arc<Object>> {
        lock(&self.objects).get(&h).cloned().ok_or_else(|| {
            ProcessError::invalid_argument(format!("{h} is not {what} of this process"))
        })
    }

    /// `queue-try-put-small`: true when `item` was appended, false when the bounded queue
    /// is full.
    pub fn try_put_small(&self, h: u64, item: &[u8]) -> Result<bool> {
        self.with_queue(h, |q| {
            q.check_size(item.len())?;
            Ok(q.try_put_item(Item::from_slice(item))?.is_none())
        })?
    }

    /// `queue-try-get-small`: the oldest item, none when the queue is empty.
    pub fn try_get_small(&self, h: u64) -> Result<Option<Taken>> {
        let adopted = Adopted::default();
        let item = self.with_queue(h, |q| q.try_get_item(false, &adopted.sink()));
        self.adopt(adopted);
        Ok(item??.map(Item::taken))
    }

    /// Takes the objects that came with items into the table (whose lock the calls that
    /// took them may have held).
    fn adopt(&self, adopted: Adopted) {
        let objects = adopted.0.into_inner().unwrap_or_else(|e| e.into_inner());
        if objects.is_empty() {
            return;
        }
        let mut queues = Vec::new();
        {
            let mut table = lock(&self.objects);
            for (h, object) in objects {
                if object.is_queue() {
                    queues.push(h);
                }
                table.entry(h).or_insert(object);
            }
        }
        if let Some(adopted) = lock(&self.adopted).as_mut() {
            adopted.extend(queues);
        }
    }

    /// From now on, keeps the queues this table takes with items for
    /// [`take_adopted`](Self::take_adopted).
    pub fn report_adopted(&self) {
        lock(&self.adopted).get_or_insert_with(Vec::new);
    }

    /// The queues this table took with items since the last call (for a native child's
    /// client, which answers some calls on queues itself).
    pub fn take_adopted(&self) -> Vec<u64> {
        lock(&self.adopted)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The objects `handles` name, for an item that carries them.
    fn carried(&self, handles: &[u64]) -> Result<SharedObjects> {
        self.shares(handles)
    }

    /// Runs `f` on queue `h` without taking a reference to it (the fast path).
    fn with_queue<T>(&self, h: u64, f: impl FnOnce(&Channel) -> T) -> Result<T> {
        match lock(&self.objects).get(&h).map(|o| &o.kind) {
            Some(Kind::Queue(q)) => Ok(f(q)),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a queue of this process"
            ))),
        }
    }

    fn queue(&self, h: u64) -> Result<Arc<Channel>> {
        match &self.object(h, "a queue")?.kind {
            Kind::Queue(q) => Ok(q.clone()),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a queue of this process"
            ))),
        }
    }

    fn with_conn<T>(&self, h: u64, f: impl FnOnce(&ConnEnd) -> Result<T>) -> Result<T> {
        let object = self.object(h, "a connection")?;
        match &object.kind {
            Kind::Conn(c) => f(c),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a connection of this process"
            ))),
        }
    }

    fn with_event<T>(&self, h: u64, f: impl FnOnce(&EventObj) -> T) -> Result<T> {
        let object = self.object(h, "an event")?;
        match &object.kind {
            Kind::Event(e) => Ok(f(e)),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not an event of this process"
            ))),
        }
    }

    fn lock_obj(&self, h: u64) -> Result<Arc<Object>> {
        let object = self.object(h, "a lock")?;
        match &object.kind {
            Kind::Lock(_) => Ok(object),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a lock of this process"
            ))),
        }
    }

    /// The channel a receive on `h` (a queue or a readable connection) reads.
    fn receivable(&self, h: u64) -> Result<Arc<Channel>> {
        let object = self.object(h, "a connection or queue")?;
        match &object.kind {
            Kind::Queue(q) => Ok(q.clone()),
            Kind::Conn(c) => c.recv_channel().cloned(),
            _ => Err(ProcessError::invalid_argument(format!(
                "{h} is not a connection or queue of this process"
            ))),
        }
    }

    /// The objects `handles` name, for a child about to be created.
    pub fn shares(&self, handles: &[u64]) -> Result<Vec<(u64, Arc<Object>)>> {
        let objects = lock(&self.objects);
        handles
            .iter()
            .map(|&h| {
                objects.get(&h).map(|o| (h, o.clone())).ok_or_else(|| {
                    ProcessError::invalid_argument(format!(
                        "{h} is not a queue, connection, event or lock of this process"
                    ))
                })
            })
            .collect()
    }

    /// Which of `handles` would not block on receive, in the order given; waits up to
    /// `timeout` (none: forever) for one to be.
    async fn ready(&self, handles: &[u64], timeout: Option<u64>) -> Result<Vec<u64>> {
        let channels = handles
            .iter()
            .map(|&h| self.receivable(h))
            .collect::<Result<Vec<_>>>()?;
        let deadline = deadline(timeout);
        let _waiting: Vec<Waiting<'_>> = channels.iter().map(|c| c.changed.waiting()).collect();
        loop {
            let mut waits: Vec<_> = channels
                .iter()
                .map(|c| Box::pin(c.changed.notify.notified()))
                .collect();
            for w in &mut waits {
                w.as_mut().enable();
            }
            let ready: Vec<u64> = handles
                .iter()
                .zip(&channels)
                .filter(|(_, c)| c.ready())
                .map(|(h, _)| *h)
                .collect();
            if !ready.is_empty() || channels.is_empty() || timeout == Some(0) {
                return Ok(ready);
            }
            let any = futures::future::select_all(waits);
            let woke = match deadline {
                None => {
                    any.await;
                    true
                }
                Some(d) => tokio::time::timeout_at(d, any).await.is_ok(),
            };
            if !woke {
                return Ok(Vec::new());
            }
        }
    }

    /// Carries out `request` at once if it needs no waiting (the common case of a put, a
    /// get, an acquire); gives it back otherwise, for [`serve`](Self::serve).
    pub fn serve_now(&self, request: Request) -> Result<Response, Request> {
        use Request as R;
        match request {
            R::QueuePut { .. } | R::QueueGet { .. } | R::QueueGetMany { .. } => {
                self.queue_now(request)
            }
            R::ConnRecv { h } => {
                match self
                    .with_conn(h, |c| c.recv_channel().cloned())
                    .and_then(|c| {
                        let adopted = Adopted::default();
                        let got = c.try_get(true, &adopted.sink());
                        self.adopt(adopted);
                        got
                    }) {
                    Ok(Some(item)) => Ok(Response::Bytes(item)),
                    Err(e) => Ok(Response::Error(e)),
                    Ok(None) => Err(R::ConnRecv { h }),
                }
            }
            R::LockAcquire { h, block, timeout } => {
                let acquired = self.lock_obj(h).map(|object| match &object.kind {
                    Kind::Lock(l) => l.try_acquire(&self.owner),
                    _ => Some(Err(not_a_lock(h))),
                });
                match acquired {
                    Err(e) => Ok(Response::Error(e)),
                    Ok(Some(r)) => Ok(Response::from(r)),
                    Ok(None) if !block => Ok(Response::Bool(false)),
                    Ok(None) => Err(R::LockAcquire { h, block, timeout }),
                }
            }
            request @ (R::QueuePutMany { .. }
            | R::ConnSend { .. }
            | R::QueueSize { .. }
            | R::EventSet { .. }
            | R::EventClear { .. }
            | R::EventIsSet { .. }
            | R::LockRelease { .. }
            | R::LockValue { .. }
            | R::SlotInfo { .. }
            | R::QueueTaskDone { .. }
            | R::ConditionNotify { .. }
            | R::BarrierActionDone { .. }
            | R::BarrierReset { .. }
            | R::BarrierAbort { .. }
            | R::BarrierState { .. }
            | R::MemoryRead { .. }
            | R::MemoryWrite { .. }
            | R::DictGet { .. }
            | R::DictSet { .. }
            | R::DictRemove { .. }
            | R::DictLen { .. }
            | R::DictItems { .. }
            | R::DictClear { .. }
            | R::ListLen { .. }
            | R::ListGet { .. }
            | R::ListSet { .. }
            | R::ListInsert { .. }
            | R::ListPop { .. }
            | R::ListItems { .. }
            | R::Close { .. }) => {
                // None of these ever waits.
                let mut served = std::pin::pin!(self.serve(request));
                let waker = std::task::Waker::noop();
                match served
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(waker))
                {
                    std::task::Poll::Ready(r) => Ok(r),
                    std::task::Poll::Pending => Ok(Response::Error(ProcessError::host_failure(
                        "internal error: a request that never waits had to wait",
                    ))),
                }
            }
            request => Err(request),
        }
    }

    /// [`serve_now`](Self::serve_now) for a put or get on a queue.
    fn queue_now(&self, request: Request) -> Result<Response, Request> {
        use Request as R;
        let full = || ProcessError::new(ErrorKind::Full, "the queue is full");
        let empty = || ProcessError::new(ErrorKind::Empty, "the queue is empty");
        match request {
            R::QueuePut {
                h,
                item,
                block,
                timeout,
            } => {
                let put = self.with_queue(h, |q| {
                    q.check_size(item.len())?;
                    q.try_put(item)
                });
                match put.and_then(|r| r) {
                    Ok(None) => Ok(Response::Unit),
                    Err(e) => Ok(Response::Error(e)),
                    Ok(Some(_)) if !block => Ok(Response::Error(full())),
                    Ok(Some(item)) => Err(R::QueuePut {
                        h,
                        item,
                        block,
                        timeout,
                    }),
                }
            }
            R::QueueGet { h, block, timeout } => {
                let adopted = Adopted::default();
                let got = self.with_queue(h, |q| q.try_get(false, &adopted.sink()));
                self.adopt(adopted);
                match got.and_then(|r| r) {
                    Ok(Some(item)) => Ok(Response::Bytes(item)),
                    Err(e) => Ok(Response::Error(e)),
                    Ok(None) if !block => Ok(Response::Error(empty())),
                    Ok(None) => Err(R::QueueGet { h, block, timeout }),
                }
            }
            R::QueueGetMany { max: 0, .. } => Ok(Response::Error(no_items())),
            R::QueueGetMany {
                h,
                max,
                block,
                timeout,
            } => {
                let adopted = Adopted::default();
                let sink = adopted.sink();
                let got = self.queue(h).and_then(|q| match q.try_get(false, &sink)? {
                    Some(first) => q.take_more(first, max, &sink).map(Some),
                    None => Ok(None),
                });
                drop(sink);
                self.adopt(adopted);
                match got {
                    Ok(Some(items)) => Ok(Response::Items(items)),
                    Err(e) => Ok(Response::Error(e)),
                    Ok(None) if !block => Ok(Response::Error(empty())),
                    Ok(None) => Err(R::QueueGetMany {
                        h,
                        max,
                        block,
                        timeout,
                    }),
                }
            }
            request => Err(request),
        }
    }

    /// Carries out `request`: at once when it needs no waiting ([`serve_now`]), else by
    /// [`serve`].
    ///
    /// [`serve_now`]: Self::serve_now
    /// [`serve`]: Self::serve
    pub async fn call(&self, request: Request) -> Response {
        match self.serve_now(request) {
            Ok(response) => response,
            // Boxed: the waiting path is rare, and its future is large.
            Err(request) => Box::pin(self.serve(request)).await,
        }
    }

    /// Carries out one request of this table's process.
    pub async fn serve(&self, request: Request) -> Response {
        use Request as R;
        match request {
            R::QueueNew { .. }
            | R::QueuePut { .. }
            | R::QueueGet { .. }
            | R::QueueGetMany { .. }
            | R::QueuePutMany { .. }
            | R::QueuePutObjects { .. }
            | R::QueueSize { .. } => self.serve_queue(request).await,
            R::PipeNew { .. }
            | R::ConnSend { .. }
            | R::ConnSendObjects { .. }
            | R::ConnRecv { .. }
            | R::ConnPoll { .. } => self.serve_conn(request).await,
            R::EventNew
            | R::EventSet { .. }
            | R::EventClear { .. }
            | R::EventIsSet { .. }
            | R::EventWait { .. } => self.serve_event(request).await,
            R::LockNew { .. }
            | R::LockAcquire { .. }
            | R::LockRelease { .. }
            | R::LockValue { .. }
            | R::SlotInfo { .. } => self.serve_lock(request).await,
            R::JoinableQueueNew { .. }
            | R::QueueTaskDone { .. }
            | R::QueueJoin { .. }
            | R::ConditionNew { .. }
            | R::ConditionWait { .. }
            | R::ConditionNotify { .. }
            | R::BarrierNew { .. }
            | R::BarrierWait { .. }
            | R::BarrierActionDone { .. }
            | R::BarrierReset { .. }
            | R::BarrierAbort { .. }
            | R::BarrierState { .. }
            | R::MemoryNew { .. }
            | R::MemoryRead { .. }
            | R::MemoryWrite { .. } => self.serve_coord(request).await,
            R::DictNew
            | R::DictGet { .. }
            | R::DictSet { .. }
            | R::DictRemove { .. }
            | R::DictLen { .. }
            | R::DictItems { .. }
            | R::DictClear { .. }
            | R::ListNew
            | R::ListLen { .. }
            | R::ListGet { .. }
            | R::ListSet { .. }
            | R::ListInsert { .. }
            | R::ListPop { .. }
            | R::ListItems { .. } => self.serve_managed(request),
            R::Close { h } => {
                self.close(h);
                Response::Unit
            }
            R::Ready { handles, timeout } => self.ready(&handles, timeout).await.into(),
            R::Share { handles } => self
                .shares(&handles)
                .map(|objects| self.registry.share(objects))
                .into(),
            R::Revoke { token } => {
                self.registry.claim(token);
                Response::Unit
            }
            R::Gone { pid } => {
                self.registry.gone(pid).await;
                Response::Unit
            }
            R::Lifecycle(event) => {
                self.registry.publish(event);
                Response::Unit
            }
        }
    }

    /// A new object of `kind` held by this table's process; its handle.
    fn new_handle(&self, kind: Kind) -> Result<u64> {
        self.registry.new_object(kind).map(|o| self.insert(o))
    }

    async fn serve_queue(&self, request: Request) -> Response {
        use Request as R;
        match request {
            R::QueueNew { maxsize } => self
                .new_handle(Kind::Queue(self.registry.channel(maxsize)))
                .into(),
            R::QueuePut {
                h,
                item,
                block,
                timeout,
            } => match self.queue(h) {
                Ok(q) => q.put(item, block, timeout).await.into(),
                Err(e) => Response::Error(e),
            },
            R::QueuePutObjects {
                h,
                item,
                objects,
                block,
                timeout,
            } => match self.queue(h).and_then(|q| Ok((q, self.carried(&objects)?))) {
                Ok((q, objects)) => {
                    self.registry.carries(&q);
                    q.put_item(Item::Objects(Box::new((item, objects))), block, timeout)
                        .await
                        .into()
                }
                Err(e) => Response::Error(e),
            },
            R::QueueGet { h, block, timeout } => match self.queue(h) {
                Ok(q) => {
                    let adopted = Adopted::default();
                    let got = q.get(block, timeout, false, &adopted.sink()).await;
                    self.adopt(adopted);
                    got.into()
                }
                Err(e) => Response::Error(e),
            },
            R::QueueGetMany {
                h,
                max,
                block,
                timeout,
            } => match self.queue(h) {
                _ if max == 0 => Response::Error(no_items()),
                Ok(q) => {
                    let adopted = Adopted::default();
                    let sink = adopted.sink();
                    let got = match q.get(block, timeout, false, &sink).await {
                        Ok(first) => q.take_more(first, max, &sink),
                        Err(e) => Err(e),
                    };
                    drop(sink);
                    self.adopt(adopted);
                    got.into()
                }
                Err(e) => Response::Error(e),
            },
            R::QueuePutMany { h, items } => {
                self.queue(h).and_then(|q| q.try_put_many(items)).into()
            }
            R::QueueSize { h } => self
                .queue(h)
                .map(|q| u32::try_from(q.len()).unwrap_or(u32::MAX))
                .into(),
            other => misrouted(&other),
        }
    }

    async fn serve_conn(&self, request: Request) -> Response {
        use Request as R;
        match request {
            R::PipeNew { duplex } => self.pipe(duplex).into(),
            R::ConnSend { h, message } => self
                .with_conn(h, |c| c.send_channel().cloned())
                .and_then(|c| {
                    c.check_size(message.len())?;
                    c.try_put(message).map(|_| ())
                })
                .into(),
            R::ConnSendObjects {
                h,
                message,
                objects,
            } => self
                .with_conn(h, |c| c.send_channel().cloned())
                .and_then(|c| Ok((c, self.carried(&objects)?)))
                .and_then(|(c, objects)| {
                    c.check_size(message.len())?;
                    self.registry.carries(&c);
                    c.try_put_item(Item::Objects(Box::new((message, objects))))
                        .map(|_| ())
                })
                .into(),
            R::ConnRecv { h } => match self.with_conn(h, |c| c.recv_channel().cloned()) {
                Ok(c) => {
                    let adopted = Adopted::default();
                    let got = c.get(true, None, true, &adopted.sink()).await;
                    self.adopt(adopted);
                    got.into()
                }
                Err(e) => Response::Error(e),
            },
            R::ConnPoll { h, timeout } => match self.with_conn(h, |c| c.recv_channel().map(|_| ()))
            {
                Ok(()) => self
                    .ready(&[h], timeout)
                    .await
                    .map(|r| !r.is_empty())
                    .into(),
                Err(e) => Response::Error(e),
            },
            other => misrouted(&other),
        }
    }

    async fn serve_event(&self, request: Request) -> Response {
        use Request as R;
        match request {
            R::EventNew => self
                .new_handle(Kind::Event(EventObj::new(self.registry.arena.get())))
                .into(),
            R::EventSet { h } => self.with_event(h, EventObj::set).into(),
            R::EventClear { h } => self.with_event(h, EventObj::clear).into(),
            R::EventIsSet { h } => self.with_event(h, EventObj::is_set).into(),
            R::EventWait { h, timeout } => match self.object(h, "an event") {
                Ok(o) => match &o.kind {
                    Kind::Event(e) => Response::Bool(e.wait(timeout).await),
                    _ => Response::Error(ProcessError::invalid_argument(format!(
                        "{h} is not an event of this process"
                    ))),
                },
                Err(e) => Response::Error(e),
            },
            other => misrouted(&other),
        }
    }

    async fn serve_lock(&self, request: Request) -> Response {
        use Request as R;
        match request {
            R::LockNew { kind, value } => self
                .new_handle(Kind::Lock(LockObj::new(
                    kind,
                    value,
                    self.registry.arena.get(),
                )))
                .into(),
            R::LockAcquire { h, block, timeout } => match self.lock_obj(h) {
                Ok(o) => match &o.kind {
                    Kind::Lock(l) => l.acquire(&self.owner, block, timeout).await.into(),
                    _ => Response::Error(not_a_lock(h)),
                },
                Err(e) => Response::Error(e),
            },
            R::LockRelease { h } => self
                .lock_obj(h)
                .and_then(|o| match &o.kind {
                    Kind::Lock(l) => l.release(&self.owner),
                    _ => Err(not_a_lock(h)),
                })
                .into(),
            R::LockValue { h } => self
                .lock_obj(h)
                .and_then(|o| match &o.kind {
                    Kind::Lock(l) => Ok(l.value()),
                    _ => Err(not_a_lock(h)),
                })
                .into(),
            R::SlotInfo { h } => match self.object(h, "a lock, an event or a shared block") {
                Ok(o) => {
                    let (object, index) = match &o.kind {
                        Kind::Lock(l) => (
                            SlotKind::Lock {
                                kind: l.kind,
                                initial: l.initial,
                            },
                            l.slot.index(),
                        ),
                        Kind::Event(e) => (SlotKind::Event, e.slot.index()),
                        Kind::Memory(m) => match m.slot() {
                            Some((index, len)) => (SlotKind::Memory { len }, Some(index)),
                            None => (SlotKind::Memory { len: 0 }, None),
                        },
                        _ => {
                            return Response::Error(ProcessError::invalid_argument(format!(
                                "{h} is not a lock, an event or a shared block of this process"
                            )));
                        }
                    };
                    Response::Slot {
                        object,
                        index,
                        token: self.owner.token,
                    }
                }
                Err(e) => Response::Error(e),
            },
            other => misrouted(&other),
        }
    }

    fn pipe(&self, duplex: bool) -> Result<(u64, u64)> {
        let reg = &self.registry;
        let (a, b) = if duplex {
            let ab = reg.channel(0);
            let ba = reg.channel(0);
            (
                ConnEnd {
                    recv: Some(ba.clone()),
                    send: Some(ab.clone()),
                },
                ConnEnd {
                    recv: Some(ab),
                    send: Some(ba),
                },
            )
        } else {
            let c = reg.channel(0);
            (
                ConnEnd {
                    recv: Some(c.clone()),
                    send: None,
                },
                ConnEnd {
                    recv: None,
                    send: Some(c),
                },
            )
        };
        let a = reg.new_object(Kind::Conn(a))?;
        let b = reg.new_object(Kind::Conn(b))?;
        Ok((self.insert(a), self.insert(b)))
    }

    /// The process stops holding `h`; a lock it owns is released as if it had died.
    pub fn close(&self, h: u64) {
        let object = lock(&self.objects).remove(&h);
        if let Some(object) = object {
            abandon(&object, &self.owner);
        }
    }

    /// Runs `f` on the object `h` names when it is of the kind `pick` finds; `what` is the
    /// noun phrase of the error ("a barrier").
    fn with_kind<K, T>(
        &self,
        h: u64,
        what: &str,
        pick: impl FnOnce(&Kind) -> Option<&K>,
        f: impl FnOnce(&K) -> T,
    ) -> Result<T> {
        let object = self.object(h, what)?;
        match pick(&object.kind) {
            Some(k) => Ok(f(k)),
            None => Err(ProcessError::invalid_argument(format!(
                "{h} is not {what} of this process"
            ))),
        }
    }

    /// Shared dictionaries and lists; none of these waits.
    fn serve_managed(&self, request: Request) -> Response {
        use Request as R;
        const DICT: &str = "a dictionary";
        const LIST: &str = "a list";
        let accounts = &self.registry.accounts;
        match request {
            R::DictNew => self.new_handle(Kind::Dict(DictObj::new(accounts))).into(),
            R::DictGet { h, key } => self.with_kind(h, DICT, dict, |d| d.get(&key)).into(),
            R::DictSet { h, key, value } => self
                .with_kind(h, DICT, dict, |d| d.set(key, value))
                .and_then(|r| r)
                .into(),
            R::DictRemove { h, key } => self.with_kind(h, DICT, dict, |d| d.remove(&key)).into(),
            R::DictLen { h } => self.with_kind(h, DICT, dict, DictObj::len).into(),
            R::DictItems { h } => self
                .with_kind(h, DICT, dict, DictObj::items)
                .and_then(|r| r)
                .into(),
            R::DictClear { h } => self.with_kind(h, DICT, dict, DictObj::clear).into(),
            R::ListNew => self.new_handle(Kind::List(ListObj::new(accounts))).into(),
            R::ListLen { h } => self.with_kind(h, LIST, list, ListObj::len).into(),
            R::ListGet { h, index } => self
                .with_kind(h, LIST, list, |l| l.get(index))
                .and_then(|r| r)
                .into(),
            R::ListSet { h, index, item } => self
                .with_kind(h, LIST, list, |l| l.set(index, item))
                .and_then(|r| r)
                .into(),
            R::ListInsert { h, index, item } => self
                .with_kind(h, LIST, list, |l| l.insert(index, item))
                .and_then(|r| r)
                .into(),
            R::ListPop { h, index } => self
                .with_kind(h, LIST, list, |l| l.pop(index))
                .and_then(|r| r)
                .into(),
            R::ListItems { h } => self
                .with_kind(h, LIST, list, ListObj::items)
                .and_then(|r| r)
                .into(),
            other => misrouted(&other),
        }
    }

    /// Joinable queues, conditions, barriers and shared blocks.
    async fn serve_coord(&self, request: Request) -> Response {
        use Request as R;
        const JOINABLE: &str = "a joinable queue";
        const COND: &str = "a condition";
        const BARRIER: &str = "a barrier";
        const MEMORY: &str = "a shared block";
        match request {
            R::JoinableQueueNew { maxsize } => self
                .new_handle(Kind::Queue(self.registry.queue_channel(maxsize, true)))
                .into(),
            R::QueueTaskDone { h } => self
                .with_kind(h, JOINABLE, joinable, |u| u.done())
                .and_then(|r| r)
                .into(),
            R::QueueJoin { h, timeout } => {
                match self.with_kind(h, JOINABLE, joinable, Arc::clone) {
                    Ok(u) => Response::Bool(u.join(timeout).await),
                    Err(e) => Response::Error(e),
                }
            }
            R::ConditionNew { lock: l } => self
                .object(l, "a lock or rlock")
                .and_then(|o| {
                    CondObj::new(o).ok_or_else(|| {
                        ProcessError::invalid_argument(format!(
                            "{l} is not a lock or rlock of this process"
                        ))
                    })
                })
                .and_then(|c| self.new_handle(Kind::Cond(Arc::new(c))))
                .into(),
            R::ConditionWait { h, timeout } => match self.with_kind(h, COND, cond, Arc::clone) {
                Ok(c) => c.wait(&self.owner, timeout).await.into(),
                Err(e) => Response::Error(e),
            },
            R::ConditionNotify { h, n } => self
                .with_kind(h, COND, cond, |c| c.notify(&self.owner, n))
                .and_then(|r| r)
                .into(),
            R::BarrierNew {
                parties,
                action,
                timeout,
            } => BarrierObj::new(parties, action, timeout)
                .and_then(|b| self.new_handle(Kind::Barrier(Arc::new(b))))
                .into(),
            R::BarrierWait { h, timeout } => {
                match self.with_kind(h, BARRIER, barrier, Arc::clone) {
                    Ok(b) => b.wait(&self.owner, timeout).await.into(),
                    Err(e) => Response::Error(e),
                }
            }
            R::BarrierActionDone { h, ok } => self
                .with_kind(h, BARRIER, barrier, |b| b.action_done(&self.owner, ok))
                .and_then(|r| r)
                .into(),
            R::BarrierReset { h } => self.with_kind(h, BARRIER, barrier, |b| b.reset()).into(),
            R::BarrierAbort { h } => self.with_kind(h, BARRIER, barrier, |b| b.abort()).into(),
            R::BarrierState { h } => self.with_kind(h, BARRIER, barrier, |b| b.state()).into(),
            R::MemoryNew { size } => {
                MemoryObj::new(size, &self.registry.accounts, self.registry.arena.get())
                    .and_then(|m| self.new_handle(Kind::Memory(m)))
                    .into()
            }
            R::MemoryRead { h, offset, len } => self
                .with_kind(h, MEMORY, memory, |m| m.read(offset, len))
                .and_then(|r| r)
                .into(),
            R::MemoryWrite { h, offset, bytes } => self
                .with_kind(h, MEMORY, memory, |m| m.write(offset, &bytes))
                .and_then(|r| r)
                .into(),
            other => misrouted(&other),
        }
    }
}

fn dict(k: &Kind) -> Option<&DictObj> {
    match k {
        Kind::Dict(d) => Some(d),
        _ => None,
    }
}

fn list(k: &Kind) -> Option<&ListObj> {
    match k {
        Kind::List(l) => Some(l),
        _ => None,
    }
}

fn joinable(k: &Kind) -> Option<&Arc<Unfinished>> {
    match k {
        Kind::Queue(q) => q.unfinished.as_ref(),
        _ => None,
    }
}

fn barrier(k: &Kind) -> Option<&Arc<BarrierObj>> {
    match k {
        Kind::Barrier(b) => Some(b),
        _ => None,
    }
}

fn memory(k: &Kind) -> Option<&MemoryObj> {
    match k {
        Kind::Memory(m) => Some(m),
        _ => None,
    }
}

fn cond(k: &Kind) -> Option<&Arc<CondObj>> {
    match k {
        Kind::Cond(c) => Some(c),
        _ => None,
    }
}

/// The objects that came with the items one call took, adopted into the taker's table once
/// the call no longer holds its lock ([`SyncTable::adopt`]).
#[derive(Default)]
struct Adopted(Mutex<SharedObjects>);

impl Adopted {
    fn sink(&self) -> impl Fn(SharedObjects) + Sync + '_ {
        move |objects| lock(&self.0).extend(objects)
    }
}

/// What a process letting go of `object` (closing it, or ending) leaves behind: a lock it
/// holds is released for the next owner to learn of; a barrier action it runs breaks the
/// barrier.
fn abandon(object: &Object, owner: &Owner) {
    match &object.kind {
        Kind::Lock(l) => l.abandon(owner),
        Kind::Barrier(b) => b.abandon(owner),
        _ => {}
    }
}

/// The answer to a request handed to the wrong group of [`SyncTable::serve`] (a bug).
fn misrouted(request: &Request) -> Response {
    Response::Error(ProcessError::host_failure(format!(
        "internal error: request {request:?} reached the wrong handler"
    )))
}

/// `h` named a lock by [`SyncTable::lock_obj`] but holds another object (a bug).
fn not_a_lock(h: u64) -> ProcessError {
    ProcessError::host_failure(format!("internal error: {h} is not a lock"))
}

/// A `queue-get-many` for no items.
fn no_items() -> ProcessError {
    ProcessError::invalid_argument("queue-get-many takes at least 1 item: max must not be 0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use crate::sync::{HANDLE_BIT, LockKind};
    use std::time::Duration;

    fn table() -> SyncTable {
        SyncTable::new(Registry::new(Limits::default()), "MainProcess", Vec::new())
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_taker_holds_the_objects_of_an_item_and_a_queue_kept_in_itself_dies_with_its_run() {
        block_on(async {
            let registry = Registry::new(Limits::default());
            let accounts = registry.accounts.clone();
            let sender = SyncTable::new(registry.clone(), "A", Vec::new());
            let q = sender.serve(Request::QueueNew { maxsize: 0 }).await;
            let q = q.answer::<u64>().unwrap();
            let e = sender
                .serve(Request::EventNew)
                .await
                .answer::<u64>()
                .unwrap();
            let taker = SyncTable::new(registry.clone(), "B", sender.shares(&[q]).unwrap());
            let put = Request::QueuePutObjects {
                h: q,
                item: vec![7],
                objects: vec![e],
                block: false,
                timeout: None,
            };
            sender.serve(put).await.answer::<()>().unwrap();
            let not_held = taker.serve(Request::EventIsSet { h: e }).await;
            assert!(matches!(not_held, Response::Error(_)), "{not_held:?}");
            let get = Request::QueueGet {
                h: q,
                block: false,
                timeout: None,
            };
            assert_eq!(taker.serve(get).await.answer::<Vec<u8>>().unwrap(), vec![7]);
            let held = taker.serve(Request::EventIsSet { h: e }).await;
            assert!(!held.answer::<bool>().unwrap());
            // A handle the sender does not hold cannot go with an item.
            let forged = Request::QueuePutObjects {
                h: q,
                item: vec![8],
                objects: vec![HANDLE_BIT | 999],
                block: false,
                timeout: None,
            };
            let e = sender.serve(forged).await.answer::<()>().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            // The queue inside itself outlives every table, not the registry.
            let itself = Request::QueuePutObjects {
                h: q,
                item: vec![9],
                objects: vec![q],
                block: false,
                timeout: None,
            };
            sender.serve(itself).await.answer::<()>().unwrap();
            drop((sender, taker));
            assert_eq!(
                accounts.objects.load(Ordering::Relaxed),
                1,
                "the queue, in itself"
            );
            drop(registry);
            assert_eq!(accounts.objects.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn queue_is_fifo_and_bounded() {
        block_on(async {
            let t = table();
            let q = t
                .serve(Request::QueueNew { maxsize: 1 })
                .await
                .answer::<u64>()
                .unwrap();
            let put = |item: u8| Request::QueuePut {
                h: q,
                item: vec![item],
                block: false,
                timeout: None,
            };
            t.serve(put(1)).await.answer::<()>().unwrap();
            let full = t.serve(put(2)).await.answer::<()>().unwrap_err();
            assert_eq!(
                (full.kind, full.message.as_str()),
                (ErrorKind::Full, "the queue is full")
            );
            let get = Request::QueueGet {
                h: q,
                block: false,
                timeout: None,
            };
            assert_eq!(t.serve(get).await.answer::<Vec<u8>>().unwrap(), vec![1]);
        });
    }

    #[test]
    fn dropped_end_gives_eof_after_drain() {
        block_on(async {
            let a = table();
            let (x, y) = a
                .serve(Request::PipeNew { duplex: true })
                .await
                .answer::<(u64, u64)>()
                .unwrap();
            let shared = a.shares(&[y]).unwrap();
            a.close(y);
            let b = SyncTable::new(a.registry().clone(), "Process-1", shared);
            b.serve(Request::ConnSend {
                h: y,
                message: b"hi".to_vec(),
            })
            .await
            .answer::<()>()
            .unwrap();
            drop(b);
            assert_eq!(
                a.serve(Request::ConnRecv { h: x })
                    .await
                    .answer::<Vec<u8>>()
                    .unwrap(),
                b"hi"
            );
            let eof = a
                .serve(Request::ConnRecv { h: x })
                .await
                .answer::<Vec<u8>>()
                .unwrap_err();
            assert_eq!(eof.kind, ErrorKind::Eof);
            let broken = a
                .serve(Request::ConnSend {
                    h: x,
                    message: vec![],
                })
                .await
                .answer::<()>()
                .unwrap_err();
            assert_eq!(broken.kind, ErrorKind::BrokenPipe);
        });
    }

    #[test]
    fn dead_owner_releases_lock_and_is_reported_once() {
        block_on(async {
            let a = table();
            let l = a
                .serve(Request::LockNew {
                    kind: LockKind::Lock,
                    value: 0,
                })
                .await
                .answer::<u64>()
                .unwrap();
            let shared = a.shares(&[l]).unwrap();
            let b = SyncTable::new(a.registry().clone(), "Process-1", shared);
            let acquire = || Request::LockAcquire {
                h: l,
                block: false,
                timeout: None,
            };
            assert!(b.serve(acquire()).await.answer::<bool>().unwrap());
            assert!(!a.serve(acquire()).await.answer::<bool>().unwrap());
            drop(b);
            let died = a.serve(acquire()).await.answer::<bool>().unwrap_err();
            assert_eq!(died.kind, ErrorKind::OwnerDied);
            assert_eq!(
                died.message,
                "the lock was acquired, but its previous owner Process-1 ended while holding it"
            );
            a.serve(Request::LockRelease { h: l })
                .await
                .answer::<()>()
                .unwrap();
            assert!(a.serve(acquire()).await.answer::<bool>().unwrap());
        });
    }

    /// Any sequence of requests from several processes, with handles that exist, handles
    /// of other processes and made-up ones, never panics, never waits when asked not to,
    /// answers each request with its own kind of answer or an error, and leaves the run's
    /// accounts at zero once every process is gone.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Request(usize, u8, usize, Vec<u8>, u32),
            Share(usize, usize, usize),
            End(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..3usize, 0..54u8, 0..8usize, proptest::collection::vec(any::<u8>(), 0..16), 0..4u32)
                    .prop_map(|(p, k, h, b, n)| Op::Request(p, k, h, b, n)),
                1 => (0..3usize, 0..3usize, 0..8usize).prop_map(|(a, b, h)| Op::Share(a, b, h)),
                1 => (0..3usize).prop_map(Op::End),
            ]
        }

        fn request(kind: u8, h: u64, bytes: Vec<u8>, n: u32) -> Request {
            let t = Some(0);
            match kind {
                0 => Request::QueueNew { maxsize: n },
                1 => Request::QueuePut {
                    h,
                    item: bytes,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                2 => Request::QueueGet {
                    h,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                3 => Request::QueueSize { h },
                4 => Request::PipeNew {
                    duplex: n.is_multiple_of(2),
                },
                5 => Request::ConnSend { h, message: bytes },
                6 => Request::ConnPoll { h, timeout: t },
                7 => Request::EventNew,
                8 => Request::EventSet { h },
                9 => Request::EventClear { h },
                10 => Request::EventIsSet { h },
                11 => Request::EventWait { h, timeout: t },
                12 => Request::LockNew {
                    kind: [
                        LockKind::Lock,
                        LockKind::RLock,
                        LockKind::Semaphore,
                        LockKind::BoundedSemaphore,
                    ][n as usize % 4],
                    value: n,
                },
                13 => Request::LockAcquire {
                    h,
                    block: n.is_multiple_of(2),
                    timeout: t,
                },
                14 => Request::LockRelease { h },
                15 => Request::LockValue { h },
                16 => Request::Close { h },
                17 => Request::Ready {
                    handles: vec![h, h ^ 1],
                    timeout: t,
                },
                18 => Request::Share { handles: vec![h] },
                19 => Request::Revoke {
                    token: u64::from(n),
                },
                20 => Request::ConnRecv { h },
                21 => Request::JoinableQueueNew { maxsize: n },
                22 => Request::QueueTaskDone { h },
                23 => Request::QueueJoin { h, timeout: t },
                24 => Request::ConditionNew { lock: h },
                25 => Request::ConditionWait { h, timeout: t },
                26 => Request::ConditionNotify {
                    h,
                    n: n.is_multiple_of(2).then_some(n),
                },
                27 => Request::BarrierNew {
                    parties: n,
                    action: n.is_multiple_of(2),
                    timeout: t,
                },
                28 => Request::BarrierWait { h, timeout: t },
                29 => Request::BarrierActionDone {
                    h,
                    ok: n.is_multiple_of(2),
                },
                30 => Request::BarrierReset { h },
                31 => Request::BarrierAbort { h },
                32 => Request::BarrierState { h },
                33 => Request::MemoryNew { size: n * 3 },
                34 => Request::MemoryRead {
                    h,
                    offset: n,
                    len: n,
                },
                35 => Request::MemoryWrite {
                    h,
                    offset: n,
                    bytes,
                },
                36 => Request::DictNew,
                37 => Request::DictGet { h, key: bytes },
                38 => Request::DictSet {
                    h,
                    key: bytes.clone(),
                    value: bytes,
                },
                39 => Request::DictRemove { h, key: bytes },
                40 => Request::DictLen { h },
                41 => Request::DictItems { h },
                42 => Request::DictClear { h },
                43 => Request::ListNew,
                44 => Request::ListLen { h },
                45 => Request::ListGet { h, index: n },
                46 => Request::ListSet {
                    h,
                    index: n,
                    item: bytes,
                },
                47 => Request::ListInsert {
                    h,
                    index: n,
                    item: bytes,
                },
                48 => Request::ListPop {
                    h,
                    index: n.is_multiple_of(2).then_some(n),
                },
                49 => Request::ListItems { h },
                50 => Request::QueuePutObjects {
                    h,
                    item: bytes,
                    objects: vec![h, u64::from(n) | HANDLE_BIT],
                    block: false,
                    timeout: t,
                },
                51 => Request::ConnSendObjects {
                    h,
                    message: bytes,
                    objects: vec![h],
                },
                52 => Request::SlotInfo { h },
                _ => Request::QueueGet {
                    h,
                    block: false,
                    timeout: None,
                },
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            #[test]
            fn requests_never_panic_or_hang(ops in proptest::collection::vec(op(), 1..60)) {
                let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
                let registry = Registry::new(Limits { queued: 64, objects: 12, message: 8, ..Limits::default() });
                let mut tables: Vec<Option<SyncTable>> = (0..3)
                    .map(|i| Some(SyncTable::new(registry.clone(), &format!("P{i}"), Vec::new())))
                    .collect();
                let mut handles: Vec<u64> = vec![HANDLE_BIT | 1, 42, HANDLE_BIT | 999];
                for op in ops {
                    match op {
                        Op::Request(p, kind, h, bytes, n) => {
                            let Some(table) = &tables[p] else { continue };
                            // ConnRecv blocks by design; only ask it of a handle with data.
                            let h = handles[h % handles.len()];
                            let req = request(kind, h, bytes, n);
                            let blocking_recv = matches!(req, Request::ConnRecv { .. });
                            let answer = rt.block_on(async {
                                tokio::time::timeout(Duration::from_secs(5), async {
                                    if blocking_recv {
                                        match table.serve_now(req) {
                                            Ok(r) => r,
                                            Err(_) => Response::Unit,
                                        }
                                    } else {
                                        table.serve(req).await
                                    }
                                }).await
                            });
                            let answer = answer.expect("a request with a zero timeout waited");
                            match answer {
                                Response::Handle(h) => handles.push(h),
                                Response::Pair(a, b) => handles.extend([a, b]),
                                _ => {}
                            }
                        }
                        Op::Share(from, to, h) => {
                            let h = handles[h % handles.len()];
                            if let (Some(a), Some(_)) = (&tables[from], &tables[to])
                                && let Ok(objects) = a.shares(&[h])
                            {
                                let token = registry.share(objects);
                                let name = format!("P{to}");
                                tables[to] = Some(SyncTable::new(registry.clone(), &name, registry.claim(token)));
                            }
                        }
                        Op::End(p) => {
                            tables[p] = None;
                            tables[p] = Some(SyncTable::new(registry.clone(), "again", Vec::new()));
                        }
                    }
                }
                // Shares never claimed live until the run ends (as a revoke would end them).
                let accounts = registry.accounts.clone();
                drop(tables);
                drop(registry);
                prop_assert_eq!(accounts.objects.load(Ordering::Relaxed), 0);
                prop_assert_eq!(accounts.queued.load(Ordering::Relaxed), 0);
            }
        }
    }
}
