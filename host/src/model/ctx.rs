//! A running process's view of the world ([`ProcessCtx`]) and the rules of SPEC §3 that
//! every call of a guest or of the library's [`crate::Process`] goes through.

use super::core::{Holdings, ParentLink, ProcessCore, RunState, finish};
use super::handles::{ChildEntry, Named, Object, Objects};
use super::limits::{self, Args, Charge};
use super::run::{Entry, HostState, Run, start_here};
use crate::backend::{Elsewhere, ParentInfo, SpawnError, SpawnRequest, Spawned};
use crate::error::{ErrorKind, ProcessError};
use crate::events::ProcessEvent;
use crate::exit::{ExitStatus, Signal};
use crate::lock;
use crate::output::{Captured, ProcessOutput};
use crate::program::Program;
use crate::sync::{Client, Shares};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

type Result<T, E = ProcessError> = std::result::Result<T, E>;

/// What a new [`ProcessCtx`] is made of.
pub(crate) struct NewCtx {
    pub host: Arc<HostState>,
    pub run: Arc<Run>,
    pub program: Option<Program>,
    pub me: Arc<ProcessCore>,
    pub name: String,
    pub daemon: bool,
    pub parent: Option<ParentLink>,
    pub output: ProcessOutput,
    /// The sync objects its parent shared with it.
    pub shares: Shares,
    /// The limits and grants it runs under.
    pub bounds: super::Bounds,
    /// The name under which this host announces the process's end
    /// ([`ProcessEvent::Ended`], the name it started with): for a child it runs as a task;
    /// none for a process whose parent's host announces it, or with no end to announce.
    pub announce_end: Option<String>,
}

/// One running process's view: itself, its parent and the objects it created.
pub(crate) struct ProcessCtx {
    host: Arc<HostState>,
    run: Arc<Run>,
    /// The program this process runs; its children run it too. None for the library's
    /// root, whose children each name their program.
    program: Option<Program>,
    me: Arc<ProcessCore>,
    name: Mutex<String>,
    daemon: bool,
    parent: Option<ParentLink>,
    counter: AtomicU32,
    /// How many of this process's children are running.
    live_children: Arc<AtomicU64>,
    objects: Mutex<Objects>,
    self_handle: u64,
    parent_handle: Option<u64>,
    output: ProcessOutput,
    client: Client,
    announce_end: Option<String>,
    bounds: super::Bounds,
}

/// A start in progress, counted in its run's `starting` while it lives.
struct StartInProgress<'a>(&'a Run);

impl<'a> StartInProgress<'a> {
    fn new(run: &'a Run) -> Self {
        run.starting.fetch_add(1, Ordering::SeqCst);
        StartInProgress(run)
    }
}

impl Drop for StartInProgress<'_> {
    fn drop(&mut self) {
        self.0.starting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProcessCtx {
    /// The context of a process: `me` is its core, `parent` its parent (none for a main
    /// process or the library's root).
    pub fn new(init: NewCtx) -> Arc<Self> {
        let client = init.run.link.client(&init.name, init.shares);
        let mut objects = Objects::default();
        let self_handle = init.host.handles.next();
        objects.map.insert(self_handle, Object::Myself);
        let parent_handle = init.parent.as_ref().map(|_| {
            let h = init.host.handles.next();
            objects.map.insert(h, Object::Parent);
            h
        });
        Arc::new(ProcessCtx {
            host: init.host,
            run: init.run,
            program: init.program,
            me: init.me,
            name: Mutex::new(init.name),
            daemon: init.daemon,
            parent: init.parent,
            counter: AtomicU32::new(1),
            live_children: Arc::new(AtomicU64::new(0)),
            objects: Mutex::new(objects),
            self_handle,
            parent_handle,
            output: init.output,
            client,
            announce_end: init.announce_end,
            bounds: init.bounds,
        })
    }

    /// The limits this process runs under (its host's, or lower ones of its own).
    pub fn limits(&self) -> &crate::config::Limits {
        &self.bounds.limits
    }

    /// What this process may reach (its host's grants, or fewer of its own).
    pub fn grants(&self) -> &crate::config::Grants {
        &self.bounds.grants
    }

    /// The name under which this host announces the process's end, if it does.
    pub fn announces_end(&self) -> Option<&str> {
        self.announce_end.as_deref()
    }

    /// Publishes `event` about a process of this process's run.
    pub fn emit(&self, event: ProcessEvent) {
        self.run.link.emit(event);
    }

    pub fn run(&self) -> &Arc<Run> {
        &self.run
    }

    pub fn host(&self) -> &Arc<HostState> {
        &self.host
    }

    pub fn program(&self) -> Option<&Program> {
        self.program.as_ref()
    }

    pub fn core(&self) -> &Arc<ProcessCore> {
        &self.me
    }

    pub fn name(&self) -> String {
        lock(&self.name).clone()
    }

    pub fn output(&self) -> &ProcessOutput {
        &self.output
    }

    /// The process's own sync objects.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn current_process(&self) -> u64 {
        self.self_handle
    }

    pub fn parent_process(&self) -> Option<u64> {
        self.parent_handle
    }

    pub fn authkey(&self) -> Vec<u8> {
        self.host.authkey().to_vec()
    }

    pub fn cpu_count(&self) -> u32 {
        self.host.cpu_count()
    }

    pub(super) fn objects(&self) -> MutexGuard<'_, Objects> {
        lock(&self.objects)
    }

    /// `create`: a new unstarted child object named `Process-<identity>`, running a target
    /// of this process's own program, or of the allowed program `program`.
    pub async fn create(
        &self,
        target: &str,
        args: Vec<u8>,
        shares: &[u64],
        name: Option<String>,
        daemon: Option<bool>,
        program: Option<&str>,
    ) -> Result<u64> {
        let program = match program {
            Some(other) => self.host.programs.get(other)?,
            None => self
                .program
                .clone()
                .ok_or_else(|| ProcessError::host_failure("this process has no program"))?,
        };
        self.check_create(&program, target, &args, name.as_deref())?;
        let shares = self.client.share(shares).await?;
        self.create_in(program, target, args, shares, name, daemon, None)
    }

    /// The checks of `create` that need no lookup.
    fn check_create(
        &self,
        program: &Program,
        target: &str,
        args: &[u8],
        name: Option<&str>,
    ) -> Result<()> {
        if !program.has_target(target) {
            return Err(ProcessError::new(
                ErrorKind::UnknownTarget,
                format!(
                    "program {} has no target named '{target}'",
                    program.display_name()
                ),
            ));
        }
        if let Some(n) = name {
            check_name(n)?;
        }
        limits::check_args(self.limits(), args.len())
    }

    /// `create` for a target of `program`; the child runs under `bounds` (none: this
    /// process's).
    #[allow(clippy::too_many_arguments)]
    pub fn create_in(
        &self,
        program: Program,
        target: &str,
        args: Vec<u8>,
        shares: Shares,
        name: Option<String>,
        daemon: Option<bool>,
        bounds: Option<super::Bounds>,
    ) -> Result<u64> {
        self.check_create(&program, target, &args, name.as_deref())?;
        // Charged before a number is taken, so that a refused create takes none.
        let args = Args {
            _charge: self.run.held.charge(
                &self.host.config.limits,
                args.len() as u64,
                &format!("start arguments of {} bytes", args.len()),
            )?,
            bytes: args,
        };
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut identity = self.me.identity().to_vec();
        identity.push(count);
        let name = name.unwrap_or_else(|| default_name(&identity));
        let record = self.charge_record(&name)?;
        let handle = self.host.handles.next();
        let mut objects = self.objects();
        objects.reap();
        objects.map.insert(
            handle,
            Object::Child(Box::new(ChildEntry {
                core: ProcessCore::new(identity),
                program,
                name,
                daemon: daemon.unwrap_or(self.daemon),
                target: target.to_string(),
                args: Some(args),
                record,
                closed: false,
                refs: 1,
                captured: None,
                shares,
                bounds: bounds.unwrap_or_else(|| self.bounds.clone()),
            })),
        );
        Ok(handle)
    }

    /// Charges a child record named `name` against `held`.
    fn charge_record(&self, name: &str) -> Result<Charge> {
        let n = limits::RECORD_BYTES + name.len() as u64;
        self.run.held.charge(
            &self.host.config.limits,
            n,
            &format!("a child record of {n} bytes (with its name)"),
        )
    }

    /// `start`: runs the child's target in a new process of the backend.
    pub fn start(self: &Arc<Self>, h: u64) -> Result<()> {
        let _starting = StartInProgress::new(&self.run);
        let child = self.admit(h).inspect_err(|e| {
            if e.kind == ErrorKind::LimitExceeded {
                self.refused(self.name_of(h).unwrap_or_default(), e);
            }
        })?;
        let core = child.core.clone();
        let captured = child.output.captured();
        let name = child.name.clone();
        match self.launch(child) {
            Ok(()) => {
                self.run.add(&core);
                let mut objects = self.objects();
                objects.started.push(h);
                if let Some(Object::Child(child)) = objects.map.get_mut(&h) {
                    child.shares = Shares::None;
                    child.captured = captured;
                }
                Ok(())
            }
            Err(e) => {
                core.hold_place(None);
                *lock(&core.state) = RunState::Unstarted;
                self.live_children.fetch_sub(1, Ordering::Relaxed);
                self.run.live.fetch_sub(1, Ordering::Relaxed);
                self.refused(name, &e);
                Err(e)
            }
        }
    }

    /// Announces that the start of child `name` was refused with `error`.
    fn refused(&self, name: String, error: &ProcessError) {
        self.emit(ProcessEvent::StartFailed {
            name,
            parent: self.name(),
            error: error.clone(),
        });
    }

    /// The rules a start must pass (SPEC §3, and the limits the model counts); once they
    /// pass, the child is counted as live and what its start needs is taken from its
    /// object.
    fn admit(&self, h: u64) -> Result<Starting> {
        let mut objects = self.objects();
        let child = objects.child(
            h,
            "can only start a process object created by current process",
        )?;
        if child.core.started() {
            return Err(ProcessError::invalid_state("cannot start a process twice"));
        }
        if self.host.host_gone() {
            return Err(ProcessError::invalid_state(
                "the host of this process has been dropped",
            ));
        }
        if self.daemon {
            return Err(ProcessError::invalid_state(
                "daemonic processes are not allowed to have children",
            ));
        }
        let limits = self.limits();
        limits::check_depth(limits, child.core.identity().len() as u64)?;
        limits::check_children(limits, self.live_children.load(Ordering::Relaxed))?;
        *lock(&child.core.state) = RunState::Starting;
        // Counted from now on; its end uncounts it, however it ends.
        self.live_children.fetch_add(1, Ordering::Relaxed);
        self.run.live.fetch_add(1, Ordering::Relaxed);
        let _ = child
            .core
            .counted_in
            .set([self.live_children.clone(), self.run.live.clone()]);
        let output = self
            .host
            .output_for(&self.run, &child.name, child.bounds.limits.output);
        Ok(Starting {
            core: child.core.clone(),
            name: child.name.clone(),
            daemon: child.daemon,
            target: child.target.clone(),
            args: child.args.take().unwrap_or_default(),
            program: child.program.clone(),
            output,
            shares: child.shares.clone(),
            bounds: child.bounds.clone(),
        })
    }

    /// Has the backend start `child`, and runs it here if the backend leaves that to the
    /// model.
    fn launch(self: &Arc<Self>, child: Starting) -> Result<()> {
        let parent_name = self.name();
        let request = SpawnRequest {
            name: &child.name,
            daemon: child.daemon,
            target: &child.target,
            args: &child.args.bytes,
            identity: child.core.identity(),
            parent: ParentInfo {
                name: &parent_name,
                pid: self.me.pid().unwrap_or(0),
                daemon: self.daemon,
            },
            program: &child.program,
            output: &child.output,
            shares: &child.shares,
            link: &self.run.link,
            config: &self.host.config,
            limits: &child.bounds.limits,
            grants: &child.bounds.grants,
            authkey: self.host.authkey(),
            programs: &self.host.programs,
        };
        let spawned = self.run.part.spawn(&request).map_err(|e| match e {
            SpawnError::Full { limit, live } => limits::processes_reached(limit, live),
            SpawnError::Maps { max, live } => limits::maps_reached(max, live),
            SpawnError::Failed(e) => e,
        })?;
        let core = child.core.clone();
        let started = |pid: u64| {
            self.emit(ProcessEvent::Started {
                name: child.name.clone(),
                pid,
                parent: parent_name.clone(),
            });
        };
        let control = match spawned {
            Spawned::Here { pid, place } => {
                core.set_pid(pid);
                core.hold_place(place);
                started(pid);
                self.start_child_here(child)?
            }
            Spawned::Elsewhere(elsewhere) => {
                let pid = u64::from(elsewhere.pid);
                core.set_pid(pid);
                started(pid);
                let name = child.name.clone();
                self.await_elsewhere(&core, name, elsewhere)
            }
        };
        let mut state = lock(&core.state);
        if matches!(*state, RunState::Starting) {
            *state = RunState::Running(control);
        }
        Ok(())
    }

    /// Starts `child` in this OS process; what signals it.
    fn start_child_here(
        self: &Arc<Self>,
        child: Starting,
    ) -> Result<Box<dyn crate::backend::Control>> {
        let ctx = ProcessCtx::new(NewCtx {
            host: self.host.clone(),
            run: self.run.clone(),
            program: Some(child.program),
            me: child.core,
            announce_end: Some(child.name.clone()),
            bounds: child.bounds,
            name: child.name,
            daemon: child.daemon,
            parent: Some(ParentLink {
                core: self.me.clone(),
                name: self.name(),
                daemon: self.daemon,
            }),
            output: child.output,
            shares: child.shares,
        });
        let entry = Entry::Target {
            name: child.target,
            args: child.args,
        };
        start_here(ctx, entry).map_err(ProcessError::host_failure)
    }

    /// Awaits the end of a child that runs in another OS process, as a task started like
    /// a child's own (so a parent that joins at once awaits it on its own thread); what
    /// signals it.
    fn await_elsewhere(
        &self,
        core: &Arc<ProcessCore>,
        name: String,
        elsewhere: Elsewhere,
    ) -> Box<dyn crate::backend::Control> {
        let Elsewhere {
            pid,
            control,
            ended,
            token,
        } = elsewhere;
        let (task_core, run) = (core.clone(), self.run.clone());
        let host = self.host.clone();
        super::sched::start(core, &self.host.runtime, async move {
            let ended = ended.await;
            if let Some(hit) = ended.limit {
                task_core.record_limit(hit);
            }
            if let Some(bytes) = ended.result {
                // Kept by this host from now on, under its own `held` account.
                let len = bytes.len() as u64;
                let kept = run
                    .held
                    .charge(
                        &host.config.limits,
                        len,
                        &format!("a result of {len} bytes"),
                    )
                    .map(|charge| (bytes, charge));
                task_core.set_result(kept);
            }
            let status = ended.status;
            run.link.emit(ProcessEvent::Ended {
                name,
                pid: u64::from(pid),
                status,
                limit: ended.limit,
            });
            let holdings = Holdings::Elsewhere {
                link: &run.link,
                pid,
                token,
            };
            finish(&task_core, status, holdings).await;
        });
        control
    }

    /// The process `h` names for `join`, `wait`: a started child or the parent.
    fn waitable(&self, h: u64, not_child: &str, not_started: &str) -> Result<Arc<ProcessCore>> {
        match self.objects().resolve(h, not_child)? {
            Named::Parent => Ok(self.parent_core()),
            Named::Myself => Err(ProcessError::not_a_child(not_child)),
            Named::Child(child) if !child.core.started() => {
                Err(ProcessError::invalid_state(not_started))
            }
            Named::Child(child) => Ok(child.core.clone()),
        }
    }

    pub(super) fn parent_core(&self) -> Arc<ProcessCore> {
        match &self.parent {
            Some(p) => p.core.clone(),
            None => self.me.clone(),
        }
    }

    /// `join(timeout)`.
    pub async fn join(&self, h: u64, timeout: Option<Duration>) -> Result<()> {
        let core = self.waitable(
            h,
            "can only join a child process",
            "can only join a started process",
        )?;
        core.wait_exit(timeout).await;
        Ok(())
    }

    /// `is_alive()`.
    pub fn is_alive(&self, h: u64) -> Result<bool> {
        Ok(
            match self.objects().resolve(h, "can only test a child process")? {
                Named::Myself => true,
                Named::Parent => self.parent_core().is_alive(),
                Named::Child(child) => child.core.is_alive(),
            },
        )
    }

    /// `exitcode`.
    pub fn exitcode(&self, h: u64) -> Result<Option<i32>> {
        Ok(
            match self
                .objects()
                .resolve(h, "can only query a child process")?
            {
                Named::Myself | Named::Parent => None,
                Named::Child(child) => child.core.status().map(ExitStatus::exitcode),
            },
        )
    }

    /// The exit status of a child (library use).
    pub fn status(&self, h: u64) -> Result<Option<ExitStatus>> {
        let mut objects = self.objects();
        Ok(objects
            .child(h, "can only query a child process")?
            .core
            .status())
    }

    /// `result`: the value child `h`'s target returned, once it has ended with exit code
    /// 0.
    pub fn result(&self, h: u64) -> Result<Option<Vec<u8>>> {
        let core = {
            let mut objects = self.objects();
            let child = objects.child(h, "can only query a child process")?;
            if !child.core.started() {
                return Err(ProcessError::invalid_state("process not started"));
            }
            child.core.clone()
        };
        core.result()
    }

    /// `set-result`: keeps `value` as this process's result, charged against `held`.
    pub fn set_result(&self, value: Vec<u8>) -> Result<()> {
        limits::check_result(self.limits(), value.len())?;
        let limits = &self.host.config.limits;
        let charge = self.run.held.charge(
            limits,
            value.len() as u64,
            &format!("a result of {} bytes", value.len()),
        )?;
        self.me.set_result(Ok((value, charge)));
        Ok(())
    }

    /// The limit that ended child `h`, if one did.
    pub fn limit_hit(&self, h: u64) -> Result<Option<crate::exit::LimitHit>> {
        let mut objects = self.objects();
        Ok(objects
            .child(h, "can only query a child process")?
            .core
            .limit_hit())
    }

    /// `pid`.
    pub fn pid(&self, h: u64) -> Result<Option<u64>> {
        Ok(
            match self
                .objects()
                .resolve(h, "can only query a child process")?
            {
                Named::Myself => self.me.pid(),
                Named::Parent => self.parent_core().pid(),
                Named::Child(child) => child.core.pid(),
            },
        )
    }

    /// `name`.
    pub fn name_of(&self, h: u64) -> Result<String> {
        Ok(
            match self
                .objects()
                .resolve(h, "can only query a child process")?
            {
                Named::Myself => self.name(),
                Named::Parent => self
                    .parent
                    .as_ref()
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                Named::Child(child) => child.name.clone(),
            },
        )
    }

    /// `name = ...`.
    pub fn set_name(&self, h: u64, name: String) -> Result<()> {
        check_name(&name)?;
        match self
            .objects()
            .resolve(h, "can only rename a child process")?
        {
            Named::Myself => *lock(&self.name) = name,
            Named::Parent => {
                return Err(ProcessError::not_a_child(
                    "can only rename a child process or the current process",
                ));
            }
            Named::Child(child) => {
                child.record = self.charge_record(&name)?;
                child.name = name;
            }
        }
        Ok(())
    }

    /// `daemon`.
    pub fn daemon_of(&self, h: u64) -> Result<bool> {
        Ok(
            match self
                .objects()
                .resolve(h, "can only query a child process")?
            {
                Named::Myself => self.daemon,
                Named::Parent => self.parent.as_ref().is_some_and(|p| p.daemon),
                Named::Child(child) => child.daemon,
            },
        )
    }

    /// `daemon = ...`.
    pub fn set_daemon(&self, h: u64, daemon: bool) -> Result<()> {
        let mut objects = self.objects();
        let child = objects.child(h, "can only set daemon on a child process")?;
        if child.core.started() {
            return Err(ProcessError::invalid_state("process has already started"));
        }
        child.daemon = daemon;
        Ok(())
    }

    /// `terminate()` / `kill()`.
    pub fn signal(&self, h: u64, sig: Signal) -> Result<()> {
        let (not_child, not_started) = match sig {
            Signal::Term => (
                "can only terminate a child process",
                "can only terminate a started process",
            ),
            Signal::Kill | Signal::Other(_) => (
                "can only kill a child process",
                "can only kill a started process",
            ),
        };
        let mut objects = self.objects();
        let child = objects.child(h, not_child)?;
        if !child.core.started() {
            return Err(ProcessError::invalid_state(not_started));
        }
        if child.core.is_alive() {
            // Announced before it is delivered: its end is announced once delivered.
            self.emit(ProcessEvent::Signalled {
                name: child.name.clone(),
                pid: child.core.pid().unwrap_or(0),
                signal: sig,
            });
            child.core.signal(sig);
        }
        Ok(())
    }

    /// `close()`.
    pub fn close(&self, h: u64) -> Result<()> {
        let mut objects = self.objects();
        match objects.map.get_mut(&h) {
            Some(Object::Child(c)) => {
                if c.core.is_alive() {
                    return Err(ProcessError::invalid_state(
                        "Cannot close a process while it is still running. You should first \
                         call join() or terminate().",
                    ));
                }
                c.closed = true;
                c.args = None;
                c.shares = Shares::None;
                Ok(())
            }
            _ => Err(ProcessError::not_a_child("can only close a child process")),
        }
    }

    /// The guest dropped one reference to `h`.
    pub fn release(&self, h: u64) {
        let mut objects = self.objects();
        if let Some(Object::Child(c)) = objects.map.get_mut(&h) {
            c.refs = c.refs.saturating_sub(1);
            if c.refs == 0 && !c.core.is_alive() {
                objects.map.remove(&h);
                objects.started.retain(|&s| s != h);
            }
        }
    }

    /// `sentinel`.
    pub fn sentinel(&self, h: u64) -> Result<u64> {
        match self
            .objects()
            .resolve(h, "can only query a child process")?
        {
            Named::Parent => Ok(h),
            Named::Myself => Err(ProcessError::invalid_state(
                "the current process has no sentinel",
            )),
            Named::Child(child) if !child.core.started() => {
                Err(ProcessError::invalid_state("process not started"))
            }
            Named::Child(_) => Ok(h),
        }
    }

    /// `active_children()`: started children still running, in start order; each returned
    /// handle counts as one more guest reference.
    pub fn active_children(&self) -> Vec<u64> {
        let mut objects = self.objects();
        objects.reap();
        let Objects { map, started } = &mut *objects;
        let mut live = Vec::new();
        for h in started.iter() {
            if let Some(Object::Child(c)) = map.get_mut(h)
                && c.core.is_alive()
                && !c.closed
            {
                c.refs += 1;
                live.push(*h);
            }
        }
        live
    }

    /// The captured output of child `h`, if output is captured.
    pub fn captured(&self, h: u64) -> Result<Option<Captured>> {
        let mut objects = self.objects();
        Ok(objects
            .child(h, "can only query a child process")?
            .captured
            .clone())
    }

    fn live_children(&self) -> Vec<(bool, Arc<ProcessCore>)> {
        let objects = self.objects();
        objects
            .started
            .iter()
            .filter_map(|h| match objects.map.get(h) {
                Some(Object::Child(c)) if c.core.is_alive() => Some((c.daemon, c.core.clone())),
                _ => None,
            })
            .collect()
    }

    /// CPython's exit handler, run when a process's function has ended by itself (returned,
    /// exit(n), panic or trap): terminate the daemonic children, then join all children.
    pub async fn exit_handler(&self) {
        let children = self.live_children();
        for (daemon, core) in &children {
            if *daemon {
                core.signal(Signal::Term);
            }
        }
        for (_, core) in &children {
            core.wait_exit(None).await;
        }
    }
}

/// What a start takes from the child's object.
struct Starting {
    core: Arc<ProcessCore>,
    name: String,
    daemon: bool,
    target: String,
    args: Args,
    program: Program,
    output: ProcessOutput,
    shares: Shares,
    bounds: super::Bounds,
}

fn default_name(identity: &[u32]) -> String {
    let parts: Vec<String> = identity.iter().map(u32::to_string).collect();
    format!("Process-{}", parts.join(":"))
}

/// The longest process name the host keeps, in bytes (CPython has no bound; the host must
/// have one, as it keeps every name and writes it in each prefixed line).
pub(crate) const MAX_NAME_BYTES: usize = 4096;

fn check_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME_BYTES {
        return Err(ProcessError::invalid_argument(format!(
            "a process name has at most {MAX_NAME_BYTES} bytes, not {}",
            name.len()
        )));
    }
    if name.contains('\0') {
        return Err(ProcessError::invalid_argument(
            "a process name may not contain a NUL character",
        ));
    }
    // A newline or escape in a name could forge another process's lines in prefixed output.
    if name.chars().any(char::is_control) {
        return Err(ProcessError::invalid_argument(
            "a process name may not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_follow_identity() {
        assert_eq!(default_name(&[1]), "Process-1");
        assert_eq!(default_name(&[2, 3]), "Process-2:3");
        assert_eq!(default_name(&[1, 1, 4]), "Process-1:1:4");
    }

    #[test]
    fn names_with_nul_are_rejected() {
        assert_eq!(
            check_name("a\0b").unwrap_err().message,
            "a process name may not contain a NUL character"
        );
        assert!(check_name("worker").is_ok());
    }
}
