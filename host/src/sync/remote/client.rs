//! A native process's connection to its run's object server.

use super::frame::{FrameReader, push_frame, write_frame};
use super::{ClientMsg, Hello};
use crate::error::ProcessError;
use crate::sync::{Request, Response};
use std::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::Mutex as AsyncMutex;

/// A client's posts not sent yet: frames, and the items of the latest run of posts to one
/// queue, which become one frame when a post to another queue comes or they are sent.
#[derive(Default)]
struct Posted {
    frames: Vec<u8>,
    run: Option<(u64, Vec<Vec<u8>>)>,
    /// Bytes in `frames` and the run's items.
    bytes: usize,
}

impl Posted {
    fn push(&mut self, h: u64, item: Vec<u8>) -> std::io::Result<()> {
        self.bytes += item.len() + 4;
        match &mut self.run {
            Some((run_h, items)) if *run_h == h => items.push(item),
            _ => {
                self.end_run()?;
                self.run = Some((h, vec![item]));
            }
        }
        Ok(())
    }

    /// Frames the current run.
    fn end_run(&mut self) -> std::io::Result<()> {
        if let Some((h, items)) = self.run.take() {
            self.frames = push_frame(
                std::mem::take(&mut self.frames),
                &ClientMsg::Posts { h, items },
            )?;
        }
        Ok(())
    }

    /// Every post's frames, to be sent; none kept.
    fn take(&mut self) -> std::io::Result<Vec<u8>> {
        self.end_run()?;
        self.bytes = 0;
        Ok(std::mem::take(&mut self.frames))
    }
}

/// A native process's connection to its run's object server.
pub(crate) struct Connection {
    reader: AsyncMutex<FrameReader>,
    writer: AsyncMutex<OwnedWriteHalf>,
    /// Posts not sent yet; sent ahead of the next call, or by [`Connection::flush`].
    posted: std::sync::Mutex<Posted>,
}

fn lost(e: std::io::Error) -> ProcessError {
    ProcessError::host_failure(format!(
        "lost the connection to the run's object server: {e}"
    ))
}

impl Connection {
    /// Connects to the server at `socket` as process `name`, claiming the objects shared
    /// under `token`; with the handles of the queues among them.
    pub async fn connect(
        socket: &Path,
        name: &str,
        token: u64,
    ) -> Result<(Connection, Vec<u64>), ProcessError> {
        let stream = UnixStream::connect(socket).await.map_err(|e| {
            ProcessError::host_failure(format!(
                "cannot reach the run's object server at {}: {e}",
                socket.display()
            ))
        })?;
        let (read, mut write) = stream.into_split();
        let mut reader = FrameReader::new(read);
        write_frame(
            &mut write,
            &Hello {
                name: name.to_string(),
                token,
            },
        )
        .await
        .map_err(lost)?;
        let queues = reader
            .next::<Response>()
            .await
            .map_err(lost)?
            .answer::<Vec<u64>>()?;
        let connection = Connection {
            reader: AsyncMutex::new(reader),
            writer: AsyncMutex::new(write),
            posted: std::sync::Mutex::new(Posted::default()),
        };
        Ok((connection, queues))
    }

    /// Keeps a put of `item` on queue `h` to be sent ahead of the next call or flush, whose
    /// answer nobody waits for. Gives the bytes that were waiting to be sent before it (0:
    /// the caller arranges a flush) and after it.
    pub fn post(&self, h: u64, item: Vec<u8>) -> Result<(usize, usize), ProcessError> {
        let mut posted = crate::lock(&self.posted);
        let before = posted.bytes;
        posted.push(h, item).map_err(lost)?;
        Ok((before, posted.bytes))
    }

    /// Whether posts are waiting to be sent.
    pub fn has_posts(&self) -> bool {
        crate::lock(&self.posted).bytes > 0
    }

    /// Sends the posts not sent yet.
    pub async fn flush(&self) -> Result<(), ProcessError> {
        let mut writer = self.writer.lock().await;
        let posted = crate::lock(&self.posted).take().map_err(lost)?;
        if posted.is_empty() {
            return Ok(());
        }
        writer.write_all(&posted).await.map_err(lost)
    }

    /// Writes the posts not sent yet and then `msg`, in one write.
    async fn send(&self, msg: &ClientMsg) -> Result<(), ProcessError> {
        let mut writer = self.writer.lock().await;
        let posted = crate::lock(&self.posted).take().map_err(lost)?;
        let frame = push_frame(posted, msg).map_err(lost)?;
        writer.write_all(&frame).await.map_err(lost)
    }

    /// Sends `request` and waits for its answer.
    pub async fn call(&self, request: Request) -> Result<Response, ProcessError> {
        let mut reader = self.reader.lock().await;
        self.send(&ClientMsg::Call(request)).await?;
        reader.next().await.map_err(lost)
    }

    /// As [`call`](Self::call); when `cancel` completes first, the call is cancelled and
    /// its answer (`Cancelled`, or the real one if it crossed) returned.
    pub async fn call_cancellable(
        &self,
        request: Request,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<Response, ProcessError> {
        let mut reader = self.reader.lock().await;
        self.send(&ClientMsg::Call(request)).await?;
        tokio::select! {
            response = reader.next() => return response.map_err(lost),
            () = cancel => {}
        }
        self.send(&ClientMsg::Cancel).await?;
        reader.next().await.map_err(lost)
    }
}
