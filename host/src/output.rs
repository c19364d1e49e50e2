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

    /// Copies what was written from byte `offset` on into `buf`; how many bytes it copied.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        match &self.sink {
            Sink::Memory(vec) => {
                let vec = lock(vec);
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(vec.len());
                let n = (vec.len() - start).min(buf.len());
                buf[..n].copy_from_slice(&vec[start..start + n]);
                n
            }
            Sink::Stdout | Sink::Stderr => 0,
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
    /// Copies what was written from byte `offset` on into `buf`; how many bytes it copied
    /// (0 for a file that cannot be read).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        match self {
            Buffer::Memory(b) => b.read_at(offset, buf),
            Buffer::File(path) => {
                use std::os::unix::fs::FileExt;
                std::fs::File::open(&**path)
                    .and_then(|f| f.read_at(buf, offset))
                    .unwrap_or(0)
            }
        }
    }

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

    /// Copies what the process wrote to stdout (or to stderr, with `stderr`) from byte
    /// `offset` on into `buf`; how many bytes it copied (0: nothing more so far).
    pub(crate) fn read_at(&self, stderr: bool, offset: u64, buf: &mut [u8]) -> usize {
        if stderr {
            self.stderr.read_at(offset, buf)
        } else {
            self.stdout.read_at(offset, buf)
        }
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

/// The file whose lock serialises prefixed writes among the OS processes of a native run.
static PREFIXED_WRITES: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();

/// Makes this OS process take the lock of the file at `path` for each prefixed write, as
/// the other OS processes of its run do: a write to a pipe of more than `PIPE_BUF` bytes is
/// not atomic, so without it a long prefixed piece could be split by another process's line.
/// The file is opened by each process itself (a lock inherited with a descriptor would be
/// shared, not exclusive). Only the first call in an OS process counts; a file that cannot
/// be opened leaves writes unlocked.
pub(crate) fn share_prefixed_writes(path: &std::path::Path) {
    if PREFIXED_WRITES.get().is_some() {
        return;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(file) = file {
        let _ = PREFIXED_WRITES.set(file);
    }
}

impl Std {
    /// [`Std::write_all`] under the lock of [`share_prefixed_writes`], if there is one.
    fn write_all_shared(self, bytes: &[u8]) {
        use rustix::fs::{FlockOperation, flock};
        match PREFIXED_WRITES.get() {
            Some(file) => {
                let locked = flock(file, FlockOperation::LockExclusive).is_ok();
                self.write_all(bytes);
                if locked {
                    let _ = flock(file, FlockOperation::Unlock);
                }
            }
            None => self.write_all(bytes),
        }
    }

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
    /// The host's streams, each line behind the process's name: `[<name>] `.
    Prefix {
        prefix: Arc<str>,
        stdout: Arc<PrefixLines>,
        stderr: Arc<PrefixLines>,
    },
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
            OutputMode::Prefix => {
                let prefix: Arc<str> = format!("[{name}] ").into();
                ProcessOutput::Prefix {
                    stdout: PrefixLines::new(prefix.clone(), Std::Out),
                    stderr: PrefixLines::new(prefix.clone(), Std::Err),
                    prefix,
                }
            }
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
            ProcessOutput::Prefix { .. } => OutputMode::Prefix,
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
            ProcessOutput::Prefix { stdout, stderr, .. } => {
                builder
                    .stdout(PrefixStream(stdout.clone()))
                    .stderr(PrefixStream(stderr.clone()));
            }
            ProcessOutput::Capture(c) => {
                c.stdout.apply_stdout(builder, false);
                c.stderr.apply_stdout(builder, true);
            }
        }
    }

    /// Ends the process's last lines: with `prefix`, a partial line of its stdout or stderr
    /// is written now, as a line. Called once the process's guest code has ended.
    pub fn end_lines(&self) {
        if let ProcessOutput::Prefix { stdout, stderr, .. } = self {
            stdout.end();
            stderr.end();
        }
    }

    /// Writes a message of the host's (a trap's reason) to the process's stderr.
    pub fn write_stderr(&self, text: &str) {
        match self {
            ProcessOutput::Inherit => Std::Err.write_all(text.as_bytes()),
            ProcessOutput::InheritBounded(_, err) => err.put_lossy(text.as_bytes()),
            ProcessOutput::Prefix { prefix, .. } => {
                Std::Err.write_all_shared(&prefixed_text(prefix, text.as_bytes()));
            }
            ProcessOutput::Capture(c) => c.stderr.append(text.as_bytes()),
        }
    }
}

/// The most bytes of a process's output one prefixed line holds: a longer line (or output
/// that never ends a line) is split into pieces of at most this many bytes, each written
/// as a line of its own behind the prefix. A piece ends before a UTF-8 character that would
/// not fit whole.
pub(crate) const PREFIX_LINE_BOUND: usize = 64 * 1024;

/// A host stream that writes whole lines, each behind a prefix, with its control
/// characters escaped (see [`escape_into`]). A partial line is kept until its newline
/// arrives, it reaches [`PREFIX_LINE_BOUND`] bytes, or the process's stream is dropped.
struct PrefixStream(Arc<PrefixLines>);

impl IsTerminal for PrefixStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PrefixStream {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(PrefixWriter(self.0.clone()))
    }
}

/// The lines of one stream of one process: every writer the process opens on the stream
/// shares its partial line, which is written when the process has ended
/// ([`ProcessOutput::end_lines`]), or else when the last of them is gone.
pub(crate) struct PrefixLines {
    prefix: Arc<str>,
    std: Std,
    pending: Mutex<Splitter>,
}

impl PrefixLines {
    fn new(prefix: Arc<str>, std: Std) -> Arc<Self> {
        Arc::new(PrefixLines {
            prefix,
            std,
            pending: Mutex::new(Splitter::default()),
        })
    }

    /// Writes the partial line, if any, as a line.
    fn end(&self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        if !pending.partial.is_empty() {
            let mut out = Vec::new();
            prefixed_line(&mut out, &self.prefix, &pending.partial);
            self.std.write_all_shared(&out);
        }
    }

    /// Writes `bytes`: every line they complete, at once.
    fn write(&self, bytes: &[u8]) {
        let mut out = Vec::new();
        lock(&self.pending).feed(bytes, |line| prefixed_line(&mut out, &self.prefix, line));
        if !out.is_empty() {
            self.std.write_all_shared(&out);
        }
    }
}

impl Drop for PrefixLines {
    fn drop(&mut self) {
        self.end();
    }
}

struct PrefixWriter(Arc<PrefixLines>);

impl AsyncWrite for PrefixWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `text` as prefixed lines: each line (a last one without a newline too) behind `prefix`,
/// split and escaped as a process's output is.
fn prefixed_text(prefix: &str, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut splitter = Splitter::default();
    splitter.feed(text, |line| prefixed_line(&mut out, prefix, line));
    if !splitter.partial.is_empty() {
        prefixed_line(&mut out, prefix, &splitter.partial);
    }
    out
}

/// Appends `prefix`, `line` escaped and a newline to `out`.
fn prefixed_line(out: &mut Vec<u8>, prefix: &str, line: &[u8]) {
    out.reserve(prefix.len() + line.len() + 1);
    out.extend_from_slice(prefix.as_bytes());
    escape_into(out, line);
    out.push(b'\n');
}

/// Cuts a stream of bytes into lines of at most [`PREFIX_LINE_BOUND`] bytes. Each byte is
/// looked at once and copied at most once, however the bytes are cut into writes.
#[derive(Default)]
struct Splitter {
    /// The line so far: at most [`PREFIX_LINE_BOUND`] bytes, no newline.
    partial: Vec<u8>,
}

impl Splitter {
    /// Takes `bytes`, calling `line` with every line they complete (without its newline)
    /// and every piece of [`PREFIX_LINE_BOUND`] bytes of a longer one.
    fn feed(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = PREFIX_LINE_BOUND - self.partial.len();
            // One byte past the room: a newline there still ends a line that fits.
            let window = &bytes[..bytes.len().min(room + 1)];
            if let Some(end) = window.iter().position(|&b| b == b'\n') {
                if self.partial.is_empty() {
                    line(&window[..end]);
                } else {
                    self.partial.extend_from_slice(&window[..end]);
                    line(&self.partial);
                    self.partial.clear();
                }
                bytes = &bytes[end + 1..];
            } else if window.len() > room {
                self.partial.extend_from_slice(&window[..room]);
                bytes = &bytes[room..];
                let cut = piece_end(&self.partial);
                line(&self.partial[..cut]);
                // At most 3 bytes (a character cut short) stay.
                self.partial.drain(..cut);
            } else {
                self.partial.extend_from_slice(window);
                bytes = &[];
            }
        }
    }
}

/// Where a full piece ends: before a UTF-8 character its last bytes begin but do not
/// finish, else at its end.
fn piece_end(piece: &[u8]) -> usize {
    let len = piece.len();
    let lead = (len.saturating_sub(3)..len)
        .rev()
        .find(|&i| piece[i] & 0xc0 != 0x80);
    let Some(lead) = lead else {
        return len;
    };
    let width = match piece[lead] {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    };
    if lead > 0 && lead + width > len {
        lead
    } else {
        len
    }
}

/// Appends `line` to `out` with its control characters escaped, so that a process's output
/// cannot move the cursor, rewrite a line or forge another process's prefix: a carriage
/// return is written as `\r`, every other C0 control but tab (U+0000 to U+001F, ESC too)
/// and DEL as `\x` and two lower-case hex digits (`\x1b`, `\x7f`), and a C1 control
/// (U+0080 to U+009F, in UTF-8) as `\u{` and its hex code and `}` (`\u{9b}`). Every other
/// byte, including bytes that are not UTF-8, is written unchanged.
fn escape_into(out: &mut Vec<u8>, line: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        let c1 = b == 0xc2 && matches!(line.get(i + 1), Some(0x80..=0x9f));
        if !(c1 || b == 0x7f || (b < 0x20 && b != b'\t')) {
            i += 1;
            continue;
        }
        out.extend_from_slice(&line[start..i]);
        if c1 {
            let _ = write!(out, "\\u{{{:x}}}", line[i + 1]);
            i += 2;
        } else {
            if b == b'\r' {
                out.extend_from_slice(b"\\r");
            } else {
                let _ = write!(out, "\\x{b:02x}");
            }
            i += 1;
        }
        start = i;
    }
    out.extend_from_slice(&line[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `writes` make, fed one after the other, and the partial line left.
    fn split(writes: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut splitter = Splitter::default();
        let mut lines = Vec::new();
        for w in writes {
            splitter.feed(w, |line| lines.push(line.to_vec()));
        }
        (lines, splitter.partial)
    }

    #[test]
    fn lines_are_cut_at_newlines_however_written() {
        let text = b"one\ntwo\n\nthree";
        let whole = split(&[text]);
        let bytewise: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split(&bytewise), whole);
        let lines: Vec<&[u8]> = vec![b"one", b"two", b""];
        assert_eq!(
            whole,
            (
                lines.iter().map(|l| l.to_vec()).collect(),
                b"three".to_vec()
            )
        );
    }

    #[test]
    fn a_long_line_is_cut_at_the_bound() {
        let bound = PREFIX_LINE_BOUND;
        let text = vec![b'a'; 2 * bound + 5];
        let expected = (vec![vec![b'a'; bound]; 2], vec![b'a'; 5]);
        assert_eq!(split(&[&text]), expected);
        let chunks: Vec<&[u8]> = text.chunks(4096).collect();
        assert_eq!(split(&chunks), expected);
        // A line of the bound's length is one line, written in one piece or two.
        let mut exact = vec![b'a'; bound];
        exact.push(b'\n');
        assert_eq!(split(&[&exact]), (vec![vec![b'a'; bound]], vec![]));
        let (line, newline) = exact.split_at(bound);
        assert_eq!(split(&[line, newline]), (vec![vec![b'a'; bound]], vec![]));
    }

    #[test]
    fn a_piece_ends_before_a_character_it_would_cut() {
        let bound = PREFIX_LINE_BOUND;
        for c in ["é", "€", "𝄞"] {
            let mut text = vec![b'a'; bound - 1];
            text.extend_from_slice(c.as_bytes());
            text.extend_from_slice(b"b\n");
            let mut second = c.as_bytes().to_vec();
            second.push(b'b');
            assert_eq!(
                split(&[&text]),
                (vec![vec![b'a'; bound - 1], second], vec![]),
                "{c}"
            );
        }
        // Bytes that are no UTF-8 are cut at the bound.
        let text = vec![0x80u8; bound + 1];
        assert_eq!(split(&[&text]), (vec![vec![0x80; bound]], vec![0x80]));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\rb\x1b[2K\x08\x00\x7f\tc\u{9b}d é€".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\rb\\x1b[2K\\x08\\x00\\x7f\tc\\u{9b}d é€"
        );
        assert_eq!(
            prefixed_text("[P] ", b"x\ny\r\n\nlast"),
            b"[P] x\n[P] y\\r\n[P] \n[P] last\n"
        );
    }
}
