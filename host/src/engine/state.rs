//! The data of one process's `Store`.

use crate::exit::LimitHit;
use crate::model::ProcessCtx;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Enforces the memory limit of one process (wasmtime's `ResourceLimiter`).
pub(crate) struct MemoryLimiter {
    pub limit: u64,
    pub hit: Option<LimitHit>,
    /// Whether the process's memory, once it is being made, is to be told to the count of
    /// kernel mappings ([`super::maps::memory_made`]): wasmtime makes it, where the
    /// engine's own memory creator does not tell.
    pub tell_memory: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if std::mem::take(&mut self.tell_memory) {
            super::maps::memory_made();
        }
        if desired as u64 > self.limit {
            let hit = LimitHit::Memory(self.limit);
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real program.
        Ok(desired <= 1 << 20)
    }
}

/// The data of one process's `Store` (`wasmproc::StoreData`): what an embedder's host
/// functions and store hook ([`crate::Hooks`]) see of the process, and a value of the
/// embedder's own.
pub struct ProcState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// Scheduler ticks this process has run for (its CPU time, in ticks).
    pub(crate) ticks: u64,
    /// The process's model context; none only while a program is inspected at load time.
    pub(crate) ctx: Option<Arc<ProcessCtx>>,
    /// The embedder's value for this process.
    pub(crate) extension: Option<Box<dyn std::any::Any + Send>>,
}

impl ProcState {
    /// The process's name (empty in the store wasmproc uses to list a program's targets
    /// when it loads it).
    pub fn process_name(&self) -> String {
        self.ctx.as_ref().map(|c| c.name()).unwrap_or_default()
    }

    /// The process's pid (none in the store that lists a program's targets).
    pub fn pid(&self) -> Option<u64> {
        self.ctx.as_ref().and_then(|c| c.core().pid())
    }

    /// Keeps `value` for the embedder's host functions (replacing an earlier one).
    pub fn set_extension<T: std::any::Any + Send>(&mut self, value: T) {
        self.extension = Some(Box::new(value));
    }

    /// The value of [`ProcState::set_extension`], if it is a `T`.
    pub fn extension_mut<T: std::any::Any + Send>(&mut self) -> Option<&mut T> {
        self.extension.as_mut()?.downcast_mut()
    }
}

impl ProcState {
    /// The state of a store that runs no process: one that lists a program's targets, or
    /// instantiates it ahead of time.
    pub fn scratch() -> ProcState {
        ProcState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: u64::MAX,
                hit: None,
                tell_memory: false,
            },
            ticks: 0,
            ctx: None,
            extension: None,
        }
    }
}

impl WasiView for ProcState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
