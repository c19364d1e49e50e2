//! Where a process's stdout and stderr go: the host's own streams, the host's streams with a
//! name prefix on every line, or per-process buffers.

use crate::config::OutputMode;
use crate::exit::LimitHit;
use crate::lock;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, OutputFile, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Where captured output is kept: in memory (processes of this host process), or in a
/// file that a native child process writes as its stdout or stderr.
#[derive(Clone, Debug)]
enum Buffer {
    Memory(Bounded),
    File(Arc<PathBuf>),
}

#[derive(Clone, Debug)]
enum Sink {
    Memory(Arc<Mutex<Vec<u8>>>),
    Stdout,
    Stderr,
}

/// An output stream that takes at most `limit` bytes; a write beyond ends the writing
/// process with [`LimitHit::Output`].
#[derive(Clone, Debug)]
pub(crate) struct Bounded {
    sink: Sink,
    written: Arc<std::sync::atomic::AtomicU64>,
    limit: u64,
}

impl Bounded {
    fn memory(limit: u64) -> Self {
        Bounded {
            sink: Sink::Memory(Arc::new(Mutex::new(Vec::new()))),
            written: Arc::default(),
            limit,
        }
    }

    fn std(std: Std, limit: u64) -> Self {
        Bounded {
            sink: match std {
                Std::Out => Sink::Stdout,
                Std::Err => Sink::Stderr,
            },
            written: Arc::default(),
            limit,
        }
    }

    fn contents(&self) -> Vec<u8> {
        match &self.sink {
            Sink::Memory(buf) => lock(buf).clone(),
            Sink::Stdout | Sink::Stderr => Vec::new(),
        }
    }

    /// Writes `bytes` unless that would pass the limit.
    fn put(&self, bytes: &[u8]) -> Result<(), LimitHit> {
        use std::sync::atomic::Ordering;
        let len = bytes.len() as u64;
        let before = self.written.fetch_add(len, Ordering::Relaxed);
        if before.saturating_add(len) > self.limit {
            self.written.fetch_sub(len, Ordering::Relaxed);
            return Err(LimitHit::Output(self.limit));
        }
        match &self.sink {
            Sink::Memory(buf) => lock(buf).extend_from_slice(bytes),
            Sink::Stdout => Std::Out.write_all(bytes),
            Sink::Stderr => Std::Err.write_all(bytes),
        }
        Ok(())
    }

    /// Writes what fits (host messages such as a trap report).
    fn put_lossy(&self, bytes: &[u8]) {
        if self.put(bytes).is_err() {
            let room = self
                .limit
                .saturating_sub(self.written.load(std::sync::atomic::Ordering::Relaxed));
            let n = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
            let _ = self.put(&bytes[..n]);
        }
    }
}

impl IsTerminal for Bounded {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Bounded {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Bounded {
    async fn ready(&mut self) {}
}

impl OutputStream for Bounded {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.put(&bytes)
            .map_err(|hit| StreamError::Trap(wasmtime::Error::new(hit)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(
            self.put(buf)
                .map(|()| buf.len())
                .map_err(std::io::Error::other),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Buffer {
    fn contents(&self) -> Vec<u8> {
        match self {
            Buffer::Memory(b) => b.contents(),
            // A file that cannot be read holds nothing the caller could use.
            Buffer::File(path) => std::fs::read(&**path).unwrap_or_default(),
        }
    }

    fn append(&self, bytes: &[u8]) {
        match self {
            Buffer::Memory(pipe) => {
                let mut pipe = pipe.clone();
                let _ = Pin::new(&mut pipe)
                    .poll_write(&mut Context::from_waker(std::task::Waker::noop()), bytes);
            }
            Buffer::File(path) => {
                if let Ok(mut f) = OpenOptions::new().append(true).open(&**path) {
                    let _ = f.write_all(bytes);
                }
            }
        }
    }

    fn apply_stdout(&self, builder: &mut WasiCtxBuilder, stderr: bool) {
        match self {
            Buffer::Memory(b) if stderr => {
                builder.stderr(b.clone());
            }
            Buffer::Memory(b) => {
                builder.stdout(b.clone());
            }
            Buffer::File(path) => {
                let Ok(file) = OpenOptions::new().append(true).open(&**path) else {
                    return;
                };
                if stderr {
                    builder.stderr(OutputFile::new(file));
                } else {
                    builder.stdout(OutputFile::new(file));
                }
            }
        }
    }
}

/// The output a process wrote, when output is captured.
#[derive(Clone, Debug)]
pub struct Captured {
    name: String,
    stdout: Buffer,
    stderr: Buffer,
}

impl Captured {
    /// The name the process started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.contents()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> Vec<u8> {
        self.stderr.contents()
    }

    /// The same output, read into memory now.
    pub(crate) fn into_memory(self) -> Captured {
        let keep = |b: Buffer| match b {
            Buffer::Memory(_) => b,
            Buffer::File(_) => {
                let memory = Bounded::memory(u64::MAX);
                memory.put_lossy(&b.contents());
                Buffer::Memory(memory)
            }
        };
        Captured {
            name: self.name,
            stdout: keep(self.stdout),
            stderr: keep(self.stderr),
        }
    }

    /// The files of a native child's stdout and stderr, when captured into files.
    pub(crate) fn files(&self) -> Option<(PathBuf, PathBuf)> {
        match (&self.stdout, &self.stderr) {
            (Buffer::File(out), Buffer::File(err)) => Some(((**out).clone(), (**err).clone())),
            _ => None,
        }
    }
}

/// Output captured into files under a directory shared by every process of a run, in any
/// OS process: each process has `<stem>.name`, `<stem>.out` and `<stem>.err`, where the
/// stem begins with the system-wide monotonic time of its start, so that sorting the
/// stems gives the start order.
pub(crate) fn capture_files(dir: &Path, name: &str) -> Option<Captured> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let nanos = u128::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000
        + u128::try_from(now.tv_nsec).unwrap_or(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stem = format!("{nanos:024}-{:010}-{seq:08}", std::process::id());
    let out = dir.join(format!("{stem}.out"));
    let err = dir.join(format!("{stem}.err"));
    std::fs::write(&out, b"").ok()?;
    std::fs::write(&err, b"").ok()?;
    std::fs::write(dir.join(format!("{stem}.name")), name).ok()?;
    Some(Captured {
        name: name.to_string(),
        stdout: Buffer::File(Arc::new(out)),
        stderr: Buffer::File(Arc::new(err)),
    })
}

/// Every process captured under `dir`, in start order.
pub(crate) fn read_capture_dir(dir: &Path) -> Vec<Captured> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stems: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "name"))
        .collect();
    stems.sort();
    stems
        .into_iter()
        .filter_map(|name_file| {
            let name = std::fs::read_to_string(&name_file).ok()?;
            Some(Captured {
                name,
                stdout: Buffer::File(Arc::new(name_file.with_extension("out"))),
                stderr: Buffer::File(Arc::new(name_file.with_extension("err"))),
            })
        })
        .collect()
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
    /// This OS process's own stdout and stderr, which its parent made capture files: a
    /// native child in capture mode. Bounded by the output limit.
    InheritBounded(Bounded, Bounded),
    Prefix(Arc<str>),
    Capture(Captured),
}

impl ProcessOutput {
    /// The output of a process named `name`; captured output goes into files under
    /// `capture_dir` when one is given (native processes), into memory otherwise.
    pub fn new(
        mode: OutputMode,
        name: &str,
        capture_limit: u64,
        capture_dir: Option<&Path>,
    ) -> Self {
        match mode {
            OutputMode::Inherit => ProcessOutput::Inherit,
            OutputMode::Prefix => ProcessOutput::Prefix(format!("[{name}] ").into()),
            OutputMode::Capture => {
                if let Some(captured) = capture_dir.and_then(|dir| capture_files(dir, name)) {
                    return ProcessOutput::Capture(captured);
                }
                ProcessOutput::Capture(Captured {
                    name: name.to_string(),
                    stdout: Buffer::Memory(Bounded::memory(capture_limit)),
                    stderr: Buffer::Memory(Bounded::memory(capture_limit)),
                })
            }
        }
    }

    /// The mode this output follows.
    pub fn mode(&self) -> OutputMode {
        match self {
            ProcessOutput::Inherit => OutputMode::Inherit,
            ProcessOutput::InheritBounded(..) => OutputMode::Capture,
            ProcessOutput::Prefix(_) => OutputMode::Prefix,
            ProcessOutput::Capture(_) => OutputMode::Capture,
        }
    }

    /// A native child's output in capture mode (see [`ProcessOutput::InheritBounded`]).
    pub fn inherit_bounded(limit: u64) -> Self {
        ProcessOutput::InheritBounded(Bounded::std(Std::Out, limit), Bounded::std(Std::Err, limit))
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
            ProcessOutput::InheritBounded(out, err) => {
                builder.stdout(out.clone()).stderr(err.clone());
            }
            ProcessOutput::Prefix(prefix) => {
                builder
                    .stdout(PrefixStream::new(prefix.clone(), Std::Out))
                    .stderr(PrefixStream::new(prefix.clone(), Std::Err));
            }
            ProcessOutput::Capture(c) => {
                c.stdout.apply_stdout(builder, false);
                c.stderr.apply_stdout(builder, true);
            }
        }
    }

    /// Writes a message of the host's (a trap's reason) to the process's stderr.
    pub fn write_stderr(&self, text: &str) {
        match self {
            ProcessOutput::Inherit => Std::Err.write_all(text.as_bytes()),
            ProcessOutput::InheritBounded(_, err) => err.put_lossy(text.as_bytes()),
            ProcessOutput::Prefix(prefix) => {
                let mut out = String::new();
                for line in text.lines() {
                    out.push_str(prefix);
                    out.push_str(line);
                    out.push('\n');
                }
                Std::Err.write_all(out.as_bytes());
            }
            ProcessOutput::Capture(c) => c.stderr.append(text.as_bytes()),
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
