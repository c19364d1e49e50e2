//! Frames: a 4-byte little-endian length and a postcard encoding.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// Reads whole frames; cancel-safe (a partly read frame stays in the buffer).
pub(super) struct FrameReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

impl FrameReader {
    pub(super) fn new(read: OwnedReadHalf) -> Self {
        FrameReader {
            read,
            buf: Vec::new(),
        }
    }

    pub(super) async fn next<T: DeserializeOwned>(&mut self) -> std::io::Result<T> {
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
pub(super) fn push_frame<T: Serialize>(out: Vec<u8>, value: &T) -> std::io::Result<Vec<u8>> {
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

pub(super) async fn write_frame<T: Serialize>(
    write: &mut OwnedWriteHalf,
    value: &T,
) -> std::io::Result<()> {
    write.write_all(&push_frame(Vec::new(), value)?).await
}
