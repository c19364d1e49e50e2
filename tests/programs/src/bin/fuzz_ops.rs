//! The guest side of the process-API fuzzer (`tests/all/fuzz.rs`): main decodes a list of
//! operations from argv[1], runs each against the `wasmproc_guest` API, prints one line per
//! operation (`<i> <op> ok <value>` or `<i> <op> err <Kind>`), then `violations <n>` and
//! `done`. The target `fuzz_child` does the same in a child, with a real parent.
//!
//! Errors are expected; what must never happen is a host panic or hang, or a broken
//! invariant, which this program checks and reports as a line starting with `VIOLATION`.
//!
//! # Encoding (argv[1])
//! Operations are separated by spaces, fields by commas; strings are hex-encoded (so that
//! names may hold NUL or any other byte).
//!
//! A *ref* names a handle: `sN` the N-th handle created (modulo the count; raw 0 when none),
//! `l` the last one created, `oN_D` the N-th one plus D (a neighbour), `rN` the raw value N,
//! `c` the current process, `p` the parent (raw 0 in main).
//!
//! | op | meaning |
//! |---|---|
//! | `C,<hex target>,<-│x hex name>,<-│0│1 daemon>,<args>` | create; args: `e` none, `pN` the target's own argument N, `zLEN_SEED` LEN pseudo-random bytes |
//! | `F,<hex ops>,<-│0│1 daemon>` | create a `fuzz_child` that runs those operations |
//! | `S,<ref>` `A,<ref>` `E,<ref>` `P,<ref>` `N,<ref>` `D,<ref>` | start, is_alive, exitcode, pid, name, daemon |
//! | `J,<ref>,<-│max│ms>` | join: none (forever), the largest timeout, or ms; what could wait forever (a long sleeper, the parent) gets 5 ms instead |
//! | `M,<ref>,<hex name>` `d,<ref>,<0│1>` | set_name, set_daemon |
//! | `T,<ref>` `K,<ref>` `X,<ref>` `Z,<ref>` `R,<ref>` | terminate, kill, close, sentinel, release (drop) |
//! | `W,<ms>[,<entry>]*` | wait (at most 50 ms); an entry is `qN` the N-th sentinel obtained, or a ref (its raw value) |
//! | `L` `Y` | active_children; parent_process, current_process, cpu_count, authkey |
//!
//! At the end, what ends by itself is joined, everything else this process started is
//! terminated and joined, so that it ends.

use std::collections::HashMap;
use std::time::Duration;
use wasmproc_guest::{Error, ErrorKind, Process, Sentinel, current_process, targets, wait};

fn noop() {}

fn nap() {
    std::thread::sleep(Duration::from_millis(10));
}

fn sleep_long() {
    std::thread::sleep(Duration::from_secs(3600));
}

fn panics() {
    panic!("fuzz target panics on purpose");
}

fn exits(code: i32) {
    wasmproc_guest::exit(code);
}

/// Starts a chain of `depth` (at most 6) spawners ending in a `nap`, plus a daemonic long
/// sleeper that the exit handler must terminate.
fn spawner(depth: u32) {
    let depth = depth.min(6);
    let child = if depth == 0 {
        Process::new("nap", &())
    } else {
        Process::new("spawner", &(depth - 1))
    };
    let daemon = Process::builder("sleep_long").daemon(true).build();
    match (child, daemon) {
        (Ok(child), Ok(daemon)) => {
            let started = child.start();
            let _ = daemon.start();
            if started.is_ok() {
                let _ = child.join(None);
                match child.exitcode() {
                    Ok(Some(0)) => {}
                    // The end of the run kills every orphan still running (this spawner's
                    // ancestor may have been terminated): one may see another die first.
                    Ok(Some(-9)) => println!("spawner {depth}: child killed"),
                    other => println!("VIOLATION spawner {depth}: child ended with {other:?}"),
                }
            } else {
                println!("spawner {depth}: start: {started:?}");
            }
        }
        other => println!("spawner {depth}: create: {other:?}"),
    }
}

/// Runs a list of operations (encoded as argv[1] is) in a child, where the parent is real.
fn fuzz_child(ops: String) {
    let parent = wasmproc_guest::parent_process().map(|p| {
        let h = p.handle();
        std::mem::forget(p);
        h
    });
    if parent.is_none() {
        println!("VIOLATION a child without a parent");
    }
    Fuzzer::new(parent).run(&ops);
}

targets![noop, nap, sleep_long, panics, exits, spawner, fuzz_child];

/// The targets, as registered.
const TARGETS: &[&str] = &[
    "noop",
    "nap",
    "sleep_long",
    "panics",
    "exits",
    "spawner",
    "fuzz_child",
];

/// What the fuzzer knows about a process object it created.
struct Obj {
    target: String,
    /// The target's own argument, when the arguments were well-formed.
    arg: Option<i64>,
    /// Whether the arguments were pseudo-random bytes.
    random_args: bool,
    daemon: bool,
    started: bool,
    /// The order in which it started, among this process's children.
    start_seq: Option<u64>,
    /// Terminated or killed successfully (so `join(None)` ends).
    signalled: bool,
    closed: bool,
    /// Released at least once: the host may have forgotten it.
    released: bool,
    pid: Option<u64>,
    name: Option<String>,
}

impl Obj {
    /// Whether `code` is an exit code this object may end with.
    fn allowed(&self, code: i32) -> bool {
        if code == -15 || code == -9 {
            return true;
        }
        match self.target.as_str() {
            "noop" | "nap" | "sleep_long" => code == 0,
            "panics" => code == 1,
            "exits" => match self.arg {
                Some(n) => code == (n as i32) & 0xff,
                // Random bytes: any code they decode to, or 1 when they do not decode.
                None => (0..=255).contains(&code),
            },
            "spawner" | "fuzz_child" => code == 0 || (self.random_args && code == 1),
            _ => false,
        }
    }

    /// Whether `join(None)` could wait forever.
    fn may_hang(&self) -> bool {
        self.target == "sleep_long" && !self.signalled
    }
}

struct Fuzzer {
    /// Handles of created objects, in creation order.
    pool: Vec<u64>,
    objs: HashMap<u64, Obj>,
    sentinels: Vec<u64>,
    /// Sentinel -> the handle it came from.
    sentinel_of: HashMap<u64, u64>,
    me: u64,
    parent: Option<u64>,
    /// This process's own daemon flag, the default of its children's.
    daemon: bool,
    starts: u64,
    violations: u32,
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The first character of `s`, and the rest.
fn head(s: &str) -> (&str, &str) {
    s.split_at(s.chars().next().map_or(0, char::len_utf8))
}

fn num<T: std::str::FromStr + Default>(s: &str) -> T {
    s.parse().unwrap_or_default()
}

/// LEN bytes from a small xorshift generator seeded with SEED.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn kind(e: &Error) -> String {
    format!("{:?}", e.kind())
}

fn res<T: std::fmt::Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {}", kind(e)),
    }
}

/// A process for a raw handle that is never released by dropping it.
fn borrow<R>(h: u64, f: impl FnOnce(&Process) -> R) -> R {
    let p = Process::from_handle(h);
    let r = f(&p);
    std::mem::forget(p);
    r
}

impl Fuzzer {
    fn violation(&mut self, what: String) {
        self.violations += 1;
        println!("VIOLATION {what}");
    }

    fn slot(&self, n: &str) -> u64 {
        if self.pool.is_empty() {
            0
        } else {
            self.pool[num::<usize>(n) % self.pool.len()]
        }
    }

    fn resolve(&self, r: &str) -> u64 {
        match head(r) {
            ("s", n) => self.slot(n),
            ("o", rest) => {
                let (n, d) = rest.split_once('_').unwrap_or((rest, "0"));
                self.slot(n).wrapping_add_signed(num::<i64>(d))
            }
            ("l", _) => self.pool.last().copied().unwrap_or(0),
            ("r", n) => num(n),
            ("c", _) => self.me,
            ("p", _) => self.parent.unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether `h` names an object of this process (a child it created, itself or its
    /// parent).
    fn ours(&self, h: u64) -> bool {
        h == self.me || Some(h) == self.parent || self.objs.contains_key(&h)
    }

    /// Checks that a call on a handle that is not ours had no effect.
    fn foreign<T: std::fmt::Debug>(&mut self, op: &str, h: u64, r: &Result<T, Error>) {
        if !self.ours(h) && r.is_ok() {
            self.violation(format!("{op} on foreign handle {h} succeeded: {r:?}"));
        }
    }

    /// Invariants that hold for any of our children at any time.
    fn check(&mut self, h: u64) {
        let Some(obj) = self.objs.get(&h) else {
            return;
        };
        if obj.released {
            return;
        }
        let (exitcode, alive, pid, name, daemon) = borrow(h, |p| {
            (p.exitcode(), p.is_alive(), p.pid(), p.name(), p.daemon())
        });
        if obj.closed {
            for (what, r) in [
                ("exitcode", exitcode.as_ref().map(|_| ())),
                ("is_alive", alive.as_ref().map(|_| ())),
                ("name", name.as_ref().map(|_| ())),
            ] {
                if !matches!(&r, Err(e) if e.kind() == ErrorKind::Closed) {
                    self.violation(format!("{what} of closed {h}: {r:?}"));
                }
            }
            return;
        }
        let mut bad = Vec::new();
        match (&exitcode, &alive) {
            (Ok(Some(code)), Ok(alive)) => {
                if *alive {
                    bad.push(format!("{h} alive with exitcode {code}"));
                }
                if !obj.allowed(*code) {
                    bad.push(format!("{h} ({}) ended with {code}", obj.target));
                }
                if !obj.started {
                    bad.push(format!("{h} has exitcode {code} but was never started"));
                }
            }
            (Ok(None), Ok(alive)) => {
                if !obj.started && *alive {
                    bad.push(format!("unstarted {h} is alive"));
                }
            }
            _ => bad.push(format!("{h}: exitcode {exitcode:?} is_alive {alive:?}")),
        }
        match (&pid, obj.pid) {
            (Ok(Some(now)), Some(before)) if *now != before => {
                bad.push(format!("pid of {h} changed from {before} to {now}"))
            }
            (Ok(None), _) if obj.started => bad.push(format!("started {h} has no pid")),
            (Ok(Some(p)), _) if !obj.started => bad.push(format!("unstarted {h} has pid {p}")),
            (Ok(_), _) => {}
            (Err(e), _) => bad.push(format!("pid of {h}: {e:?}")),
        }
        match (&name, &obj.name) {
            (Ok(now), Some(expected)) if now != expected => {
                bad.push(format!("name of {h} is {now:?}, set to {expected:?}"))
            }
            (Err(e), _) => bad.push(format!("name of {h}: {e:?}")),
            _ => {}
        }
        match &daemon {
            Ok(d) if *d != obj.daemon => bad.push(format!("daemon of {h} is {d}")),
            Err(e) => bad.push(format!("daemon of {h}: {e:?}")),
            _ => {}
        }
        let pid = pid.ok().flatten();
        if let Some(obj) = self.objs.get_mut(&h)
            && obj.pid.is_none()
        {
            obj.pid = pid;
        }
        for b in bad {
            self.violation(b);
        }
    }

    fn create(&mut self, f: &[&str]) -> String {
        let target = unhex(f.first().copied().unwrap_or(""));
        let name = match f.get(1).copied().unwrap_or("-") {
            "-" => None,
            x => Some(unhex(x.strip_prefix('x').unwrap_or(x))),
        };
        let daemon = match f.get(2).copied().unwrap_or("-") {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
        let args = f.get(3).copied().unwrap_or("e");
        let (bytes, arg, random_args) = match head(args) {
            ("p", n) => {
                let n: i64 = num(n);
                let bytes = match target.as_str() {
                    "exits" => postcard_i32(n as i32),
                    "spawner" => postcard_u32(n as u32),
                    // An empty list of operations.
                    "fuzz_child" => vec![0],
                    _ => Vec::new(),
                };
                let n = match target.as_str() {
                    "exits" => i64::from(n as i32),
                    _ => n,
                };
                (bytes, Some(n), false)
            }
            ("z", rest) => {
                let (len, seed) = rest.split_once('_').unwrap_or((rest, "1"));
                (
                    random_bytes(num::<usize>(len).min(1 << 20), num(seed)),
                    None,
                    true,
                )
            }
            _ => (Vec::new(), None, false),
        };
        let mut b = Process::builder(&target).raw_args(bytes.clone());
        if let Some(n) = &name {
            b = b.name(n);
        }
        if let Some(d) = daemon {
            b = b.daemon(d);
        }
        let r = b.build();
        let out = match &r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("err {}", kind(e)),
        };
        self.created(r, target, name, daemon, bytes, arg, random_args);
        out
    }

    /// Records the outcome of a create and checks it.
    #[allow(clippy::too_many_arguments)]
    fn created(
        &mut self,
        r: Result<Process, Error>,
        target: String,
        name: Option<String>,
        daemon: Option<bool>,
        bytes: Vec<u8>,
        arg: Option<i64>,
        random_args: bool,
    ) {
        match (r, TARGETS.contains(&target.as_str())) {
            (Ok(p), true) => {
                let h = p.handle();
                std::mem::forget(p);
                let name_ok = name.as_ref().is_none_or(|n| !n.contains('\0'));
                if !name_ok {
                    self.violation(format!("create with NUL name {name:?} succeeded"));
                }
                self.pool.push(h);
                // Well-formed arguments for the no-argument targets are empty; the
                // others decode only what was encoded for them.
                let random_args = random_args
                    || (bytes.is_empty()
                        && matches!(target.as_str(), "exits" | "spawner" | "fuzz_child"));
                self.objs.insert(
                    h,
                    Obj {
                        target,
                        arg: if random_args { None } else { arg },
                        random_args,
                        daemon: daemon.unwrap_or(self.daemon),
                        started: false,
                        start_seq: None,
                        signalled: false,
                        closed: false,
                        released: false,
                        pid: None,
                        name,
                    },
                );
                self.check(h);
            }
            (Ok(p), false) => {
                let h = p.handle();
                std::mem::forget(p);
                self.violation(format!("create of unknown target {target:?} gave {h}"));
            }
            (Err(e), true) => {
                let nul = name.as_ref().is_some_and(|n| n.contains('\0'));
                if !(nul && e.kind() == ErrorKind::InvalidArgument) {
                    self.violation(format!("create {target:?} {name:?} failed: {e:?}"));
                }
            }
            (Err(e), false) => {
                if e.kind() != ErrorKind::UnknownTarget {
                    self.violation(format!("create of unknown {target:?}: {e:?}"));
                }
            }
        }
    }

    /// `F,<hex ops>,<daemon>`: a `fuzz_child` running those operations.
    fn create_child(&mut self, f: &[&str]) -> String {
        let ops = unhex(f.first().copied().unwrap_or(""));
        let daemon = match f.get(1).copied().unwrap_or("-") {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        };
        let mut b = match Process::builder("fuzz_child").args(&ops) {
            Ok(b) => b,
            Err(e) => return format!("err {}", kind(&e)),
        };
        if let Some(d) = daemon {
            b = b.daemon(d);
        }
        let r = b.build();
        let out = match &r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("err {}", kind(e)),
        };
        self.created(r, "fuzz_child".into(), None, daemon, vec![0], None, false);
        out
    }

    fn op(&mut self, op: &str) -> String {
        let fields: Vec<&str> = op.split(',').collect();
        let h = fields.get(1).map_or(0, |r| self.resolve(r));
        let arg2 = fields.get(2).copied().unwrap_or("-");
        match fields[0] {
            "C" => self.create(&fields[1..]),
            "S" => {
                let r = borrow(h, Process::start);
                self.foreign("start", h, &r);
                if let Some(obj) = self.objs.get_mut(&h)
                    && r.is_ok()
                {
                    if obj.started {
                        let t = obj.target.clone();
                        self.violation(format!("{h} ({t}) started twice"));
                    }
                    self.starts += 1;
                    if let Some(obj) = self.objs.get_mut(&h) {
                        obj.started = true;
                        obj.start_seq = Some(self.starts);
                    }
                }
                self.check(h);
                res(&r)
            }
            "F" => self.create_child(&fields[1..]),
            "J" => {
                // Joining the parent waits for it to end, and it waits for us in its exit
                // handler: a deadlock, as in CPython. Never wait forever on it.
                let hang = self.objs.get(&h).is_some_and(Obj::may_hang) || Some(h) == self.parent;
                let timeout = match arg2 {
                    "-" | "max" if hang => Some(Duration::from_millis(5)),
                    "-" => None,
                    // The largest timeout the WIT can carry.
                    "max" => Some(Duration::MAX),
                    ms => Some(Duration::from_millis(num(ms))),
                };
                let r = borrow(h, |p| p.join(timeout));
                self.foreign("join", h, &r);
                if r.is_ok()
                    && timeout.is_none_or(|t| t == Duration::MAX)
                    && let Some(obj) = self.objs.get(&h)
                    && !obj.released
                {
                    let (code, alive) = borrow(h, |p| (p.exitcode(), p.is_alive()));
                    if !matches!(code, Ok(Some(_))) || !matches!(alive, Ok(false)) {
                        self.violation(format!(
                            "after join(None) of {h}: exitcode {code:?} is_alive {alive:?}"
                        ));
                    }
                }
                self.check(h);
                res(&r)
            }
            "A" => {
                let r = borrow(h, Process::is_alive);
                self.foreign("is_alive", h, &r);
                // (The parent may have been terminated: this one is then an orphan.)
                if h == self.me && !matches!(r, Ok(true)) {
                    self.violation(format!("current process is_alive: {r:?}"));
                }
                self.check(h);
                res(&r)
            }
            "E" => {
                let r = borrow(h, Process::exitcode);
                self.foreign("exitcode", h, &r);
                if (h == self.me || Some(h) == self.parent) && !matches!(r, Ok(None)) {
                    self.violation(format!("current process or parent exitcode: {r:?}"));
                }
                self.check(h);
                res(&r)
            }
            "P" => {
                let r = borrow(h, Process::pid);
                self.foreign("pid", h, &r);
                self.check(h);
                // Pids differ between runs and backends: print only whether there is one.
                res(&r.map(|p| p.is_some()))
            }
            "N" => {
                let r = borrow(h, Process::name);
                self.foreign("name", h, &r);
                self.check(h);
                res(&r.map(|n| n.len()))
            }
            "M" => {
                let name = unhex(arg2);
                let r = borrow(h, |p| p.set_name(&name));
                self.foreign("set_name", h, &r);
                if r.is_ok() && name.contains('\0') {
                    self.violation(format!("set_name with NUL on {h} succeeded"));
                }
                if r.is_ok()
                    && let Some(obj) = self.objs.get_mut(&h)
                {
                    obj.name = Some(name);
                }
                self.check(h);
                res(&r)
            }
            "D" => {
                let r = borrow(h, Process::daemon);
                self.foreign("daemon", h, &r);
                self.check(h);
                res(&r)
            }
            "d" => {
                let value = arg2 == "1";
                let r = borrow(h, |p| p.set_daemon(value));
                self.foreign("set_daemon", h, &r);
                if let Some(obj) = self.objs.get_mut(&h)
                    && r.is_ok()
                {
                    obj.daemon = value;
                }
                self.check(h);
                res(&r)
            }
            "T" | "K" => {
                let r = borrow(h, |p| {
                    if fields[0] == "T" {
                        p.terminate()
                    } else {
                        p.kill()
                    }
                });
                self.foreign("terminate/kill", h, &r);
                if let Some(obj) = self.objs.get_mut(&h)
                    && r.is_ok()
                {
                    obj.signalled = true;
                }
                self.check(h);
                res(&r)
            }
            "X" => {
                let r = borrow(h, Process::close);
                self.foreign("close", h, &r);
                if let Some(obj) = self.objs.get_mut(&h)
                    && r.is_ok()
                {
                    obj.closed = true;
                }
                self.check(h);
                res(&r)
            }
            "Z" => {
                let r = borrow(h, Process::sentinel);
                self.foreign("sentinel", h, &r);
                if let Ok(s) = r {
                    self.sentinels.push(s.raw());
                    self.sentinel_of.insert(s.raw(), h);
                    // A sentinel of an ended process is ready at once.
                    let code = borrow(h, Process::exitcode);
                    if let Ok(Some(_)) = code {
                        let ready = wait(&[s], Some(Duration::ZERO));
                        if !matches!(&ready, Ok(v) if v == &[s]) {
                            self.violation(format!("sentinel of ended {h} not ready: {ready:?}"));
                        }
                    }
                }
                self.check(h);
                res(&r.map(|_| ()))
            }
            "R" => {
                drop(Process::from_handle(h));
                if let Some(obj) = self.objs.get_mut(&h) {
                    obj.released = true;
                }
                "ok".to_string()
            }
            "W" => self.wait(&fields[1..]),
            "L" => {
                let children = wasmproc_guest::active_children();
                let listed: Vec<u64> = children.iter().map(Process::handle).collect();
                let mut bad = Vec::new();
                let mut last_seq = 0;
                for c in &children {
                    let h = c.handle();
                    match self.objs.get(&h) {
                        None => bad.push(format!("active child {h} is not ours")),
                        Some(o) if !o.started || o.closed => {
                            bad.push(format!("active child {h} unstarted or closed"))
                        }
                        Some(o) => {
                            let seq = o.start_seq.unwrap_or(0);
                            if seq <= last_seq {
                                bad.push(format!("active children not in start order: {listed:?}"));
                            }
                            last_seq = seq;
                        }
                    }
                    if let Err(e) = c.name() {
                        bad.push(format!("active child {h}: name {e:?}"));
                    }
                }
                drop(children);
                // A started child that is not listed has ended.
                for (&h, o) in &self.objs {
                    if o.started && !o.closed && !o.released && !listed.contains(&h) {
                        let code = borrow(h, Process::exitcode);
                        if !matches!(code, Ok(Some(_))) {
                            bad.push(format!("{h} not among active children: exitcode {code:?}"));
                        }
                    }
                }
                for b in bad {
                    self.violation(b);
                }
                format!("ok {}", listed.len())
            }
            "Y" => {
                let parent = wasmproc_guest::parent_process();
                let me = current_process();
                let line = format!(
                    "ok parent={} me={} cpus={} authkey={}",
                    parent.is_some(),
                    me.name().map(|n| n.len()).unwrap_or(0),
                    wasmproc_guest::cpu_count() > 0,
                    wasmproc_guest::authkey().as_bytes().len()
                );
                if me.handle() != self.me {
                    self.violation(format!("current_process changed to {}", me.handle()));
                }
                std::mem::forget(me);
                let parent = parent.map(|p| {
                    let h = p.handle();
                    std::mem::forget(p);
                    h
                });
                if parent != self.parent {
                    self.violation(format!("parent_process changed to {parent:?}"));
                }
                line
            }
            other => format!("unknown op {other}"),
        }
    }

    fn wait(&mut self, f: &[&str]) -> String {
        let ms: u64 = num(f.first().copied().unwrap_or("0"));
        let list: Vec<Sentinel> = f
            .iter()
            .skip(1)
            .map(|e| match e.strip_prefix('q') {
                Some(n) if self.sentinels.is_empty() => num::<u64>(n),
                Some(n) => self.sentinels[num::<usize>(n) % self.sentinels.len()],
                None => self.resolve(e),
            })
            .map(Sentinel::from_raw)
            .collect();
        let r = wait(&list, Some(Duration::from_millis(ms.min(50))));
        let mut bad = Vec::new();
        match &r {
            Ok(ready) => {
                // The ready ones are a subsequence of the given ones.
                let mut given = list.iter();
                for s in ready {
                    if !given.any(|g| g == s) {
                        bad.push(format!("wait returned {s:?}, not in order of {list:?}"));
                    }
                    if let Some(&h) = self.sentinel_of.get(&s.raw())
                        && let Some(obj) = self.objs.get(&h)
                        && !obj.released
                        && !obj.closed
                    {
                        let code = borrow(h, Process::exitcode);
                        if !matches!(code, Ok(Some(_))) {
                            bad.push(format!("wait: {s:?} ready but {h} exitcode {code:?}"));
                        }
                    }
                }
            }
            Err(e) => {
                // Sentinels this process was given, of objects it still holds open, are valid.
                let valid = list.iter().all(|s| match self.sentinel_of.get(&s.raw()) {
                    Some(&h) if Some(h) == self.parent => true,
                    Some(h) => self.objs.get(h).is_some_and(|o| !o.closed && !o.released),
                    None => false,
                });
                if e.kind() != ErrorKind::InvalidArgument || valid {
                    bad.push(format!("wait on {list:?} failed with {e:?}"));
                }
            }
        }
        for b in bad {
            self.violation(b);
        }
        res(&r.map(|v| v.len()))
    }

    /// Ends every process this one started, so that main can end.
    fn cleanup(&mut self) {
        let mut handles = self.pool.clone();
        for c in wasmproc_guest::active_children() {
            handles.push(c.handle());
            // Keep the reference active_children gave: the handle is used below.
            std::mem::forget(c);
        }
        // What ends by itself may end (so that children running operations get to run
        // them under every backend); the rest is terminated.
        for &h in &handles {
            if self
                .objs
                .get(&h)
                .is_some_and(|o| o.started && !o.may_hang())
            {
                let _ = borrow(h, |p| p.join(Duration::from_secs(10)));
            }
        }
        for &h in &handles {
            borrow(h, |p| {
                let _ = p.terminate();
            });
        }
        for &h in &handles {
            let r = borrow(h, |p| p.join(Duration::from_secs(30)));
            let alive = borrow(h, Process::is_alive);
            if r.is_ok() && matches!(alive, Ok(true)) {
                self.violation(format!("{h} still alive 30 s after terminate"));
            }
        }
        let left = wasmproc_guest::active_children();
        if !left.is_empty() {
            let names: Vec<String> = left.iter().filter_map(|p| p.name().ok()).collect();
            self.violation(format!("active children after cleanup: {names:?}"));
        }
    }
}

fn postcard_u32(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn postcard_i32(n: i32) -> Vec<u8> {
    postcard_u32(((n << 1) ^ (n >> 31)) as u32)
}

impl Fuzzer {
    fn new(parent: Option<u64>) -> Fuzzer {
        let me = current_process();
        let daemon = me.daemon().unwrap_or(false);
        let f = Fuzzer {
            pool: Vec::new(),
            objs: HashMap::new(),
            sentinels: Vec::new(),
            sentinel_of: HashMap::new(),
            me: me.handle(),
            parent,
            daemon,
            starts: 0,
            violations: 0,
        };
        std::mem::forget(me);
        f
    }

    /// Runs the operations of `ops`, one line each, then ends every child.
    fn run(mut self, ops: &str) {
        for (i, op) in ops.split_whitespace().enumerate() {
            let out = self.op(op);
            println!("{i} {op} {out}");
        }
        self.cleanup();
        println!("violations {}", self.violations);
        println!("done");
    }
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    Fuzzer::new(None).run(&arg);
}
