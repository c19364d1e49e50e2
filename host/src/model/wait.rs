//! `multiprocessing.connection.wait`: which of a process's sentinels, connections and
//! queues are ready, waiting up to a timeout for one to be.

use super::core::ProcessCore;
use super::ctx::ProcessCtx;
use super::handles::Object;
use crate::error::ProcessError;
use crate::sync::is_sync_handle;
use std::sync::Arc;
use std::time::Duration;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

impl ProcessCtx {
    /// `wait(objects, timeout)`: the objects that are ready, in the order given: process
    /// sentinels and the handles of connections and queues together.
    pub async fn wait(&self, objects: &[u64], timeout: Option<Duration>) -> Result<Vec<u64>> {
        let (syncs, sentinels): (Vec<u64>, Vec<u64>) =
            objects.iter().partition(|&&h| is_sync_handle(h));
        if syncs.is_empty() {
            return self.wait_processes(&sentinels, timeout).await;
        }
        let cores = self.sentinel_cores(&sentinels)?;
        let mut ready_syncs = self.client().ready_now(&syncs).await?;
        let ended = |cores: &[Arc<ProcessCore>]| cores.iter().any(|c| c.status().is_some());
        if ready_syncs.is_empty() && !ended(&cores) && timeout != Some(Duration::ZERO) {
            let any_ended = async {
                if cores.is_empty() {
                    std::future::pending::<()>().await;
                }
                let ends = cores.iter().map(|c| Box::pin(c.wait_exit(None)));
                futures::future::select_all(ends).await;
            };
            ready_syncs = self.client().ready(&syncs, timeout, any_ended).await?;
        }
        let ready_sentinels = ready(&sentinels, &cores);
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
        let now = ready(sentinels, &cores);
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
        let any = futures::future::select_all(cores.iter().map(|c| Box::pin(c.wait_exit(None))));
        match timeout {
            None => {
                any.await;
            }
            Some(t) => {
                let _ = tokio::time::timeout(t, any).await;
            }
        }
        Ok(ready(sentinels, &cores))
    }
}

/// The sentinels whose processes (`cores`, in the same order) have ended.
fn ready(sentinels: &[u64], cores: &[Arc<ProcessCore>]) -> Vec<u64> {
    sentinels
        .iter()
        .zip(cores)
        .filter(|(_, c)| c.status().is_some())
        .map(|(s, _)| *s)
        .collect()
}
