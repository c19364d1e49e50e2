//! Sync objects for native child processes: the run's root host serves every native
//! process's [`SyncTable`] over a Unix socket in the run's directory.
//!
//! A connection starts with [`Hello`] (the process's name and the token of the objects its
//! parent shared); then each [`ClientMsg::Call`] gets exactly one [`Response`]. While a
//! call blocks, the client may send [`ClientMsg::Cancel`] (the call is answered at once,
//! with `Cancelled` unless it completed first) and [`ClientMsg::Revoke`] (never answered).
//! [`ClientMsg::Posts`] carries puts of consecutive posts to one queue, whose answers are
//! not sent: the first failure, if any, is the answer to the connection's next `Call`
//! (which is then not carried out).
//! When the connection closes (the process ended, however it ended), its table goes, with
//! everything that implies (locks released, connections' peers at end-of-file).
//!
//! Frames are a 4-byte little-endian length and a postcard encoding.

use super::{Registry, Request, Response, SyncTable, WireError};
use crate::error::ProcessError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex as AsyncMutex;

/// The first message on a connection.
#[derive(Serialize, Deserialize)]
struct Hello {
    name: String,
    token: u64,
}

#[derive(Serialize, Deserialize)]
enum ClientMsg {
    Call(Request),
    /// Posts (`queue-post`) to queue `h`, in order; the client does not wait for them.
    Posts {
        h: u64,
        items: Vec<Vec<u8>>,
    },
    Cancel,
    Revoke(u64),
}

/// Reads whole frames; cancel-safe (a partly read frame stays in the buffer).
struct FrameReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

impl FrameReader {
    async fn next<T: DeserializeOwned>(&mut self) -> std::io::Result<T> {
        loop {
            if self.buf.len() >= 4 {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if self.buf.len() >= 4 + len {
                    let value = postcard::from_bytes(&self.buf[4..4 + len])
                        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                    self.buf.drain(..4 + len);
                    return value;
                }
                self.buf.reserve(4 + len - self.buf.len());
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Appends `value`'s frame to `out`.
fn push_frame<T: Serialize>(out: Vec<u8>, value: &T) -> std::io::Result<Vec<u8>> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let start = out.len();
    let mut out = out;
    out.extend_from_slice(&[0; 4]);
    let mut out = postcard::to_extend(value, out).map_err(|e| invalid(e.to_string()))?;
    let len = out.len() - start - 4;
    let len = u32::try_from(len)
        .map_err(|_| invalid(format!("a message of {len} bytes is too large")))?;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

async fn write_frame<T: Serialize>(write: &mut OwnedWriteHalf, value: &T) -> std::io::Result<()> {
    write.write_all(&push_frame(Vec::new(), value)?).await
}

/// Serves the native processes of one run; runs until the listener is dropped.
pub(crate) async fn serve(listener: tokio::net::UnixListener, registry: Arc<Registry>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let registry = registry.clone();
        let pid = stream
            .peer_cred()
            .ok()
            .and_then(|c| c.pid())
            .and_then(|p| u32::try_from(p).ok());
        if let Some(pid) = pid {
            registry.connected(pid);
        }
        tokio::spawn(async move {
            let _ = serve_connection(stream, registry.clone()).await;
            // The connection's table is gone now.
            if let Some(pid) = pid {
                registry.disconnected(pid);
            }
        });
    }
}

async fn serve_connection(stream: UnixStream, registry: Arc<Registry>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader {
        read,
        buf: Vec::new(),
    };
    let hello: Hello = reader.next().await?;
    let objects = registry.claim(hello.token);
    let table = SyncTable::new(registry.clone(), &hello.name, objects);
    write_frame(&mut write, &Response::Unit).await?;
    // The failure of a post, for the next call.
    let mut failed_post: Option<WireError> = None;
    loop {
        let request = match reader.next::<ClientMsg>().await? {
            ClientMsg::Call(request) => request,
            ClientMsg::Posts { h, items } => {
                for item in items {
                    let request = Request::QueuePut {
                        h,
                        item,
                        block: true,
                        timeout: None,
                    };
                    if let Response::Error(e) = table.call(request).await
                        && failed_post.is_none()
                    {
                        failed_post = Some(e.prefixed("an earlier queue-post failed: "));
                    }
                }
                continue;
            }
            // A cancel that crossed the answer: the call is already answered.
            ClientMsg::Cancel => continue,
            ClientMsg::Revoke(token) => {
                registry.claim(token);
                continue;
            }
        };
        if let Some(e) = failed_post.take() {
            write_frame(&mut write, &Response::Error(e)).await?;
            continue;
        }
        // Most calls need no waiting: answered without the cancellable wait below.
        let request = match table.serve_now(request) {
            Ok(response) => {
                write_frame(&mut write, &response).await?;
                continue;
            }
            Err(request) => request,
        };
        let call = table.serve(request);
        tokio::pin!(call);
        let response = loop {
            tokio::select! {
                response = &mut call => break response,
                msg = reader.next::<ClientMsg>() => match msg? {
                    ClientMsg::Cancel => break Response::Cancelled,
                    ClientMsg::Revoke(token) => { registry.claim(token); }
                    ClientMsg::Call(_) | ClientMsg::Posts { .. } => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "a call while another is in progress",
                        ));
                    }
                },
            }
        };
        write_frame(&mut write, &response).await?;
    }
}

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
pub(crate) struct Client {
    reader: AsyncMutex<FrameReader>,
    writer: AsyncMutex<OwnedWriteHalf>,
    /// Posts not sent yet; sent ahead of the next call, or by [`Client::flush`].
    posted: std::sync::Mutex<Posted>,
}

fn lost(e: std::io::Error) -> ProcessError {
    ProcessError::host_failure(format!(
        "lost the connection to the run's object server: {e}"
    ))
}

impl Client {
    /// Connects to the server at `socket` as process `name`, claiming the objects shared
    /// under `token`.
    pub async fn connect(socket: &Path, name: &str, token: u64) -> Result<Client, ProcessError> {
        let stream = UnixStream::connect(socket).await.map_err(|e| {
            ProcessError::host_failure(format!(
                "cannot reach the run's object server at {}: {e}",
                socket.display()
            ))
        })?;
        let (read, mut write) = stream.into_split();
        let mut reader = FrameReader {
            read,
            buf: Vec::new(),
        };
        write_frame(
            &mut write,
            &Hello {
                name: name.to_string(),
                token,
            },
        )
        .await
        .map_err(lost)?;
        reader.next::<Response>().await.map_err(lost)?.unit()?;
        Ok(Client {
            reader: AsyncMutex::new(reader),
            writer: AsyncMutex::new(write),
            posted: std::sync::Mutex::new(Posted::default()),
        })
    }

    /// Keeps a put of `item` on queue `h` to be sent ahead of the next call or flush, whose
    /// answer nobody waits for. Gives the bytes that were waiting to be sent before it (0:
    /// the caller arranges a flush) and after it.
    pub fn post(&self, h: u64, item: Vec<u8>) -> Result<(usize, usize), ProcessError> {
        let mut posted = crate::model::lock(&self.posted);
        let before = posted.bytes;
        posted.push(h, item).map_err(lost)?;
        Ok((before, posted.bytes))
    }

    /// Sends the posts not sent yet.
    pub async fn flush(&self) -> Result<(), ProcessError> {
        let mut writer = self.writer.lock().await;
        let posted = crate::model::lock(&self.posted).take().map_err(lost)?;
        if posted.is_empty() {
            return Ok(());
        }
        writer.write_all(&posted).await.map_err(lost)
    }

    /// Writes the posts not sent yet and then `msg`, in one write.
    async fn send(&self, msg: &ClientMsg) -> Result<(), ProcessError> {
        let mut writer = self.writer.lock().await;
        let posted = crate::model::lock(&self.posted).take().map_err(lost)?;
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
