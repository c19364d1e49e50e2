//! The run's object server, in its root host: one table per connection.

use super::frame::{FrameReader, write_frame};
use super::{ClientMsg, Hello};
use crate::error::ProcessError;
use crate::sync::{Registry, Request, Response, SyncTable};
use std::sync::Arc;
use tokio::net::UnixStream;

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
    let mut reader = FrameReader::new(read);
    let hello: Hello = reader.next().await?;
    let objects = registry.claim(hello.token);
    // The client answers a bad handle in its fast calls itself: it learns its queues here.
    let queues = objects
        .iter()
        .filter(|(_, o)| o.is_queue())
        .map(|(h, _)| *h)
        .collect();
    let table = SyncTable::new(registry.clone(), &hello.name, objects);
    table.report_adopted();
    write_frame(&mut write, &Response::Handles(queues)).await?;
    // The failure of a post, for the next call.
    let mut failed_post: Option<ProcessError> = None;
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
                        failed_post = Some(ProcessError::new(
                            e.kind,
                            format!("an earlier queue-post failed: {}", e.message),
                        ));
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
                write_frame(&mut write, &with_adopted(&table, response)).await?;
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
        write_frame(&mut write, &with_adopted(&table, response)).await?;
    }
}

/// `response`, with the queues the call gave the process, if any (the client learns of
/// them so that it answers its fast calls on them).
fn with_adopted(table: &SyncTable, response: Response) -> Response {
    let queues = table.take_adopted();
    if queues.is_empty() {
        response
    } else {
        Response::Adopted {
            queues,
            response: Box::new(response),
        }
    }
}
