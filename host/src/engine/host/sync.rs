//! `wasmproc:process/sync`: queues, pipes, events and locks. Each import is one
//! [`Request`] to the calling process's sync client, answered with the import's type.

use super::{HostResult, to_wit};
use crate::engine::bindings::wasmproc::process::sync::{self as wit, Host, SmallItem, TakenItem};
use crate::engine::state::ProcState;
use crate::error::{ErrorKind, ProcessError};
use crate::sync::{Answer, LockKind, Request, Taken};

impl ProcState {
    /// Carries out `request` on the caller's sync objects (a future that does not borrow
    /// the store's data, which is not `Sync`).
    fn sync<T: Answer>(
        &self,
        request: Request,
    ) -> impl Future<Output = HostResult<T>> + Send + 'static {
        let model = self.model().cloned();
        async move { Ok(model?.client().call(request).await.map_err(to_wit)) }
    }

    /// Carries out `request` at once if it needs neither waiting nor another OS process:
    /// none when it cannot, or when it fails with an error of kind `miss`.
    fn sync_now<T: Answer>(&self, request: Request, miss: ErrorKind) -> HostResult<Option<T>> {
        Ok(match self.model()?.client().now(request) {
            None => Ok(None),
            Some(response) => match response.answer::<T>() {
                Ok(answer) => Ok(Some(answer)),
                Err(e) if e.kind == miss => Ok(None),
                Err(e) => Err(to_wit(e)),
            },
        })
    }
}

impl Host for ProcState {
    async fn queue_new(&mut self, maxsize: u32) -> HostResult<u64> {
        self.sync(Request::QueueNew { maxsize }).await
    }

    async fn queue_put(
        &mut self,
        h: u64,
        item: Vec<u8>,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<()> {
        let request = Request::QueuePut {
            h,
            item,
            block,
            timeout,
        };
        self.sync(request).await
    }

    async fn queue_get(
        &mut self,
        h: u64,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<Vec<u8>> {
        self.sync(Request::QueueGet { h, block, timeout }).await
    }

    async fn queue_get_many(
        &mut self,
        h: u64,
        max: u32,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<Vec<Vec<u8>>> {
        let request = Request::QueueGetMany {
            h,
            max,
            block,
            timeout,
        };
        self.sync(request).await
    }

    async fn queue_put_many(&mut self, h: u64, items: Vec<Vec<u8>>) -> HostResult<u32> {
        self.sync(Request::QueuePutMany { h, items }).await
    }

    async fn queue_post(&mut self, h: u64, item: Vec<u8>) -> HostResult<()> {
        let model = self.model()?.clone();
        Ok(model.client().post(h, item).await.map_err(to_wit))
    }

    fn queue_try_put(&mut self, h: u64, item: Vec<u8>) -> HostResult<bool> {
        let request = Request::QueuePut {
            h,
            item,
            block: false,
            timeout: None,
        };
        Ok(self
            .sync_now::<()>(request, ErrorKind::Full)?
            .map(|put| put.is_some()))
    }

    fn queue_try_get(&mut self, h: u64) -> HostResult<Option<Vec<u8>>> {
        let request = Request::QueueGet {
            h,
            block: false,
            timeout: None,
        };
        self.sync_now(request, ErrorKind::Empty)
    }

    fn queue_try_put_small(&mut self, h: u64, item: SmallItem) -> HostResult<bool> {
        let Some(len) = Some(usize::from(item.len)).filter(|l| *l <= 16) else {
            return Ok(Err(to_wit(ProcessError::invalid_argument(format!(
                "a small item has at most 16 bytes, not {}",
                item.len
            )))));
        };
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&item.lo.to_le_bytes());
        bytes[8..].copy_from_slice(&item.hi.to_le_bytes());
        Ok(
            match self.model()?.client().try_put_small(h, &bytes[..len]) {
                Some(Ok(put)) => Ok(put),
                Some(Err(e)) => Err(to_wit(e)),
                None => Ok(false),
            },
        )
    }

    fn queue_try_get_small(&mut self, h: u64) -> HostResult<TakenItem> {
        Ok(match self.model()?.client().try_get_small(h) {
            Some(Ok(Some(Taken::Small(len, bytes)))) => {
                let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("8 bytes"));
                Ok(TakenItem::Small(SmallItem {
                    len,
                    lo: word(&bytes[..8]),
                    hi: word(&bytes[8..]),
                }))
            }
            Some(Ok(Some(Taken::Large(item)))) => Ok(TakenItem::Large(item)),
            Some(Ok(None)) | None => Ok(TakenItem::None),
            Some(Err(e)) => Err(to_wit(e)),
        })
    }

    async fn queue_qsize(&mut self, h: u64) -> HostResult<u32> {
        self.sync(Request::QueueSize { h }).await
    }

    async fn pipe_new(&mut self, duplex: bool) -> HostResult<(u64, u64)> {
        self.sync(Request::PipeNew { duplex }).await
    }

    async fn conn_send(&mut self, h: u64, message: Vec<u8>) -> HostResult<()> {
        self.sync(Request::ConnSend { h, message }).await
    }

    async fn conn_send_objects(
        &mut self,
        h: u64,
        message: Vec<u8>,
        objects: Vec<u64>,
    ) -> HostResult<()> {
        let request = Request::ConnSendObjects {
            h,
            message,
            objects,
        };
        self.sync(request).await
    }

    async fn queue_put_objects(
        &mut self,
        h: u64,
        item: Vec<u8>,
        objects: Vec<u64>,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<()> {
        let request = Request::QueuePutObjects {
            h,
            item,
            objects,
            block,
            timeout,
        };
        self.sync(request).await
    }

    async fn conn_recv(&mut self, h: u64) -> HostResult<Vec<u8>> {
        self.sync(Request::ConnRecv { h }).await
    }

    async fn conn_poll(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        self.sync(Request::ConnPoll { h, timeout }).await
    }

    async fn event_new(&mut self) -> HostResult<u64> {
        self.sync(Request::EventNew).await
    }

    async fn event_set(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::EventSet { h }).await
    }

    async fn event_clear(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::EventClear { h }).await
    }

    async fn event_is_set(&mut self, h: u64) -> HostResult<bool> {
        self.sync(Request::EventIsSet { h }).await
    }

    async fn event_wait(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        self.sync(Request::EventWait { h, timeout }).await
    }

    async fn lock_new(&mut self, kind: wit::LockKind, value: u32) -> HostResult<u64> {
        let kind = match kind {
            wit::LockKind::Lock => LockKind::Lock,
            wit::LockKind::Rlock => LockKind::RLock,
            wit::LockKind::Semaphore => LockKind::Semaphore,
            wit::LockKind::BoundedSemaphore => LockKind::BoundedSemaphore,
        };
        self.sync(Request::LockNew { kind, value }).await
    }

    async fn lock_acquire(
        &mut self,
        h: u64,
        block: bool,
        timeout: Option<u64>,
    ) -> HostResult<bool> {
        self.sync(Request::LockAcquire { h, block, timeout }).await
    }

    async fn lock_release(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::LockRelease { h }).await
    }

    async fn lock_value(&mut self, h: u64) -> HostResult<u32> {
        self.sync(Request::LockValue { h }).await
    }

    async fn joinable_queue_new(&mut self, maxsize: u32) -> HostResult<u64> {
        self.sync(Request::JoinableQueueNew { maxsize }).await
    }

    async fn queue_task_done(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::QueueTaskDone { h }).await
    }

    async fn queue_join(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        self.sync(Request::QueueJoin { h, timeout }).await
    }

    async fn condition_new(&mut self, lock: u64) -> HostResult<u64> {
        self.sync(Request::ConditionNew { lock }).await
    }

    async fn condition_wait(&mut self, h: u64, timeout: Option<u64>) -> HostResult<bool> {
        self.sync(Request::ConditionWait { h, timeout }).await
    }

    async fn condition_notify(&mut self, h: u64, n: Option<u32>) -> HostResult<()> {
        self.sync(Request::ConditionNotify { h, n }).await
    }

    async fn barrier_new(
        &mut self,
        parties: u32,
        action: bool,
        timeout: Option<u64>,
    ) -> HostResult<u64> {
        let request = Request::BarrierNew {
            parties,
            action,
            timeout,
        };
        self.sync(request).await
    }

    async fn barrier_wait(&mut self, h: u64, timeout: Option<u64>) -> HostResult<u32> {
        self.sync(Request::BarrierWait { h, timeout }).await
    }

    async fn barrier_action_done(&mut self, h: u64, ok: bool) -> HostResult<()> {
        self.sync(Request::BarrierActionDone { h, ok }).await
    }

    async fn barrier_reset(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::BarrierReset { h }).await
    }

    async fn barrier_abort(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::BarrierAbort { h }).await
    }

    async fn barrier_state(&mut self, h: u64) -> HostResult<wit::BarrierStatus> {
        let state = self
            .sync::<(u32, u32, bool)>(Request::BarrierState { h })
            .await?;
        Ok(
            state.map(|(parties, n_waiting, broken)| wit::BarrierStatus {
                parties,
                n_waiting,
                broken,
            }),
        )
    }

    async fn memory_new(&mut self, size: u32) -> HostResult<u64> {
        self.sync(Request::MemoryNew { size }).await
    }

    async fn memory_read(&mut self, h: u64, offset: u32, len: u32) -> HostResult<Vec<u8>> {
        self.sync(Request::MemoryRead { h, offset, len }).await
    }

    async fn memory_write(&mut self, h: u64, offset: u32, bytes: Vec<u8>) -> HostResult<()> {
        self.sync(Request::MemoryWrite { h, offset, bytes }).await
    }

    async fn dict_new(&mut self) -> HostResult<u64> {
        self.sync(Request::DictNew).await
    }

    async fn dict_get(&mut self, h: u64, key: Vec<u8>) -> HostResult<Option<Vec<u8>>> {
        self.sync(Request::DictGet { h, key }).await
    }

    async fn dict_set(&mut self, h: u64, key: Vec<u8>, value: Vec<u8>) -> HostResult<()> {
        self.sync(Request::DictSet { h, key, value }).await
    }

    async fn dict_remove(&mut self, h: u64, key: Vec<u8>) -> HostResult<Option<Vec<u8>>> {
        self.sync(Request::DictRemove { h, key }).await
    }

    async fn dict_len(&mut self, h: u64) -> HostResult<u32> {
        self.sync(Request::DictLen { h }).await
    }

    async fn dict_items(&mut self, h: u64) -> HostResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.sync(Request::DictItems { h }).await
    }

    async fn dict_clear(&mut self, h: u64) -> HostResult<()> {
        self.sync(Request::DictClear { h }).await
    }

    async fn list_new(&mut self) -> HostResult<u64> {
        self.sync(Request::ListNew).await
    }

    async fn list_len(&mut self, h: u64) -> HostResult<u32> {
        self.sync(Request::ListLen { h }).await
    }

    async fn list_get(&mut self, h: u64, index: u32) -> HostResult<Vec<u8>> {
        self.sync(Request::ListGet { h, index }).await
    }

    async fn list_set(&mut self, h: u64, index: u32, item: Vec<u8>) -> HostResult<()> {
        self.sync(Request::ListSet { h, index, item }).await
    }

    async fn list_insert(&mut self, h: u64, index: u32, item: Vec<u8>) -> HostResult<()> {
        self.sync(Request::ListInsert { h, index, item }).await
    }

    async fn list_pop(&mut self, h: u64, index: Option<u32>) -> HostResult<Vec<u8>> {
        self.sync(Request::ListPop { h, index }).await
    }

    async fn list_items(&mut self, h: u64) -> HostResult<Vec<Vec<u8>>> {
        self.sync(Request::ListItems { h }).await
    }

    async fn close(&mut self, h: u64) -> wasmtime::Result<()> {
        let _ = self.sync::<()>(Request::Close { h }).await?;
        Ok(())
    }
}
