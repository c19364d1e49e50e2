//! Where a process's stdout and stderr go: the host's own streams, the host's streams with a
//! name prefix on every line, or per-process buffers.

use crate::config::OutputMode;
use crate::model::lock;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The output a process wrote, when output is captured.
#[derive(Clone, Debug)]
pub struct Captured {
    name: String,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Captured {
    /// The name the process started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.contents().to_vec()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.contents().to_vec()
    }
}

#[derive(Clone, Copy)]
enum Std {
    Out,
    Err,
}

impl Std {
    fn write_all(self, bytes: &[u8]) {
        // A failing host stdout/stderr is no reason to harm the process: drop the bytes.
        let _ = match self {
            Std::Out => std::io::stdout().lock().write_all(bytes),
            Std::Err => std::io::stderr().lock().write_all(bytes),
        };
    }
}

/// The two output streams of one process.
pub(crate) enum ProcessOutput {
    Inherit,
    Prefix(Arc<str>),
    Capture(Captured),
}

impl ProcessOutput {
    pub fn new(mode: OutputMode, name: &str, capture_limit: usize) -> Self {
        match mode {
            OutputMode::Inherit => ProcessOutput::Inherit,
            OutputMode::Prefix => ProcessOutput::Prefix(format!("[{name}] ").into()),
            OutputMode::Capture => ProcessOutput::Capture(Captured {
                name: name.to_string(),
                stdout: MemoryOutputPipe::new(capture_limit),
                stderr: MemoryOutputPipe::new(capture_limit),
            }),
        }
    }

    pub fn captured(&self) -> Option<Captured> {
        match self {
            ProcessOutput::Capture(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Gives a WASI context these streams.
    pub fn apply(&self, builder: &mut WasiCtxBuilder) {
        match self {
            ProcessOutput::Inherit => {
                builder.stdout(std::io::stdout()).stderr(std::io::stderr());
            }
            ProcessOutput::Prefix(prefix) => {
                builder
                    .stdout(PrefixStream::new(prefix.clone(), Std::Out))
                    .stderr(PrefixStream::new(prefix.clone(), Std::Err));
            }
            ProcessOutput::Capture(c) => {
                builder.stdout(c.stdout.clone()).stderr(c.stderr.clone());
            }
        }
    }

    /// Writes a message of the host's (a trap's reason) to the process's stderr.
    pub fn write_stderr(&self, text: &str) {
        match self {
            ProcessOutput::Inherit => Std::Err.write_all(text.as_bytes()),
            ProcessOutput::Prefix(prefix) => {
                let mut out = String::new();
                for line in text.lines() {
                    out.push_str(prefix);
                    out.push_str(line);
                    out.push('\n');
                }
                Std::Err.write_all(out.as_bytes());
            }
            ProcessOutput::Capture(c) => {
                let mut pipe = c.stderr.clone();
                let _ = Pin::new(&mut pipe).poll_write(
                    &mut Context::from_waker(std::task::Waker::noop()),
                    text.as_bytes(),
                );
            }
        }
    }
}

/// A host stream that writes whole lines, each behind a prefix. A partial line is kept
/// until its newline arrives or the process's stream is dropped.
struct PrefixStream {
    prefix: Arc<str>,
    std: Std,
}

impl PrefixStream {
    fn new(prefix: Arc<str>, std: Std) -> Self {
        PrefixStream { prefix, std }
    }
}

impl IsTerminal for PrefixStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PrefixStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(PrefixWriter {
            prefix: self.prefix.clone(),
            std: self.std,
            pending: Mutex::new(Vec::new()),
        })
    }
}

struct PrefixWriter {
    prefix: Arc<str>,
    std: Std,
    pending: Mutex<Vec<u8>>,
}

impl PrefixWriter {
    fn emit(&self, line: &[u8]) {
        let mut out = Vec::with_capacity(self.prefix.len() + line.len() + 1);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(line);
        if !line.ends_with(b"\n") {
            out.push(b'\n');
        }
        self.std.write_all(&out);
    }
}

impl AsyncWrite for PrefixWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut pending = lock(&self.pending);
        pending.extend_from_slice(buf);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            self.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Drop for PrefixWriter {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if !pending.is_empty() {
            self.emit(&pending);
        }
    }
}
