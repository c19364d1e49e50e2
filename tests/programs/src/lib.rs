//! Helpers shared by the guest test programs.

use std::fmt::Debug;
use wasmproc_guest::{Error, Process};

/// Formats a result the way the tests expect it: the value's `Debug`, or
/// `error <Kind>: <message>`.
pub fn fmt<T: Debug>(r: &Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?}: {}", e.kind(), e.message()),
    }
}

/// Prints `label: <result>` (see [`fmt`]).
#[macro_export]
macro_rules! show {
    ($label:expr, $e:expr) => {
        println!("{}: {}", $label, $crate::fmt(&$e))
    };
}

/// The names of the active children, in start order.
pub fn active_names() -> Vec<String> {
    wasmproc_guest::active_children()
        .iter()
        .map(|p| p.name().unwrap_or_else(|e| e.to_string()))
        .collect()
}

/// Whether `p` is among the active children.
pub fn is_active(p: &Process) -> bool {
    wasmproc_guest::active_children()
        .iter()
        .any(|c| c.handle() == p.handle())
}

/// Sleeps for an hour: long enough to be terminated, killed or left behind.
pub fn sleep_forever() {
    std::thread::sleep(std::time::Duration::from_secs(3600));
}
