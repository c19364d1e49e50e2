//! Sync objects for native child processes: the run's root host serves every native
//! process's [`SyncTable`](crate::sync::SyncTable) over a Unix socket in the run's directory.
//!
//! A connection starts with [`Hello`] (the process's name and the token of the objects its
//! parent shared); then each [`ClientMsg::Call`] gets exactly one [`Response`](crate::sync::Response). While a
//! call blocks, the client may send [`ClientMsg::Cancel`] (the call is answered at once,
//! with `Cancelled` unless it completed first) and [`ClientMsg::Revoke`] (never answered).
//! [`ClientMsg::Posts`] carries puts of consecutive posts to one queue, whose answers are
//! not sent: the first failure, if any, is the answer to the connection's next `Call`
//! (which is then not carried out).
//! When the connection closes (the process ended, however it ended), its table goes, with
//! everything that implies (locks released, connections' peers at end-of-file).
//!
//! Frames are a 4-byte little-endian length and a postcard encoding ([`frame`]).

mod client;
mod frame;
mod server;

pub(crate) use client::Connection;
pub(crate) use server::serve;

use super::Request;
use serde::{Deserialize, Serialize};

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
