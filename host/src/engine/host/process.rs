//! `wasmproc:process/process`: starting and controlling processes.

use super::{HostResult, duration, to_wit};
use crate::engine::bindings::wasmproc::process::process::Host;
use crate::engine::state::ProcState;
use crate::exit::{ExitStatus, GuestExit, Signal};

impl Host for ProcState {
    async fn create(
        &mut self,
        target: String,
        args: Vec<u8>,
        shares: Vec<u64>,
        name: Option<String>,
        daemon: Option<bool>,
        program: Option<String>,
    ) -> HostResult<u64> {
        let model = self.model()?.clone();
        Ok(model
            .create(&target, args, &shares, name, daemon, program.as_deref())
            .await
            .map_err(to_wit))
    }

    fn start(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.start(h))
    }

    async fn join(&mut self, h: u64, timeout: Option<u64>) -> HostResult<()> {
        let model = self.model()?.clone();
        Ok(model.join(h, duration(timeout)).await.map_err(to_wit))
    }

    fn is_alive(&mut self, h: u64) -> HostResult<bool> {
        self.call(|m| m.is_alive(h))
    }

    fn exitcode(&mut self, h: u64) -> HostResult<Option<i32>> {
        self.call(|m| m.exitcode(h))
    }

    fn pid(&mut self, h: u64) -> HostResult<Option<u64>> {
        self.call(|m| m.pid(h))
    }

    fn name(&mut self, h: u64) -> HostResult<String> {
        self.call(|m| m.name_of(h))
    }

    fn set_name(&mut self, h: u64, name: String) -> HostResult<()> {
        self.call(|m| m.set_name(h, name))
    }

    fn daemon(&mut self, h: u64) -> HostResult<bool> {
        self.call(|m| m.daemon_of(h))
    }

    fn set_daemon(&mut self, h: u64, daemon: bool) -> HostResult<()> {
        self.call(|m| m.set_daemon(h, daemon))
    }

    fn terminate(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.signal(h, Signal::Term))
    }

    fn kill(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.signal(h, Signal::Kill))
    }

    fn close(&mut self, h: u64) -> HostResult<()> {
        self.call(|m| m.close(h))
    }

    fn release(&mut self, h: u64) -> wasmtime::Result<()> {
        self.model()?.release(h);
        Ok(())
    }

    fn sentinel(&mut self, h: u64) -> HostResult<u64> {
        self.call(|m| m.sentinel(h))
    }

    async fn wait(&mut self, sentinels: Vec<u64>, timeout: Option<u64>) -> HostResult<Vec<u64>> {
        let model = self.model()?.clone();
        Ok(model
            .wait(&sentinels, duration(timeout))
            .await
            .map_err(to_wit))
    }

    fn result(&mut self, h: u64) -> HostResult<Option<Vec<u8>>> {
        self.call(|m| m.result(h))
    }

    fn set_result(&mut self, value: Vec<u8>) -> HostResult<()> {
        self.call(|m| m.set_result(value))
    }

    fn current_process(&mut self) -> wasmtime::Result<u64> {
        Ok(self.model()?.current_process())
    }

    fn parent_process(&mut self) -> wasmtime::Result<Option<u64>> {
        Ok(self.model()?.parent_process())
    }

    fn active_children(&mut self) -> wasmtime::Result<Vec<u64>> {
        Ok(self.model()?.active_children())
    }

    fn exit(&mut self, code: i32) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(GuestExit(ExitStatus::from_exit_call(
            code,
        ))))
    }

    fn authkey(&mut self) -> wasmtime::Result<Vec<u8>> {
        Ok(self.model()?.authkey())
    }

    fn cpu_count(&mut self) -> wasmtime::Result<u32> {
        Ok(self.model()?.cpu_count())
    }
}
