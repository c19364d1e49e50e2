//! Guest SDK for [wasmproc]: Python's `multiprocessing.Process`, inside a WebAssembly program.
//!
//! A program is an ordinary Rust binary built for `wasm32-wasip2`. Its `main` runs as the
//! main process (`MainProcess`); functions registered with [`targets!`] can be run in child
//! processes, each a fresh instance of the program that shares nothing with its parent but
//! the arguments it was given:
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmproc_guest::{Process, targets};
//!
//! fn greet(who: String) {
//!     println!("hello, {who}");
//! }
//!
//! targets![greet];
//!
//! fn main() -> Result<(), wasmproc_guest::Error> {
//!     let p = Process::new("greet", &"world".to_string())?;
//!     p.start()?;
//!     p.join(Duration::from_secs(5))?;
//!     assert_eq!(p.exitcode()?, Some(0));
//!     Ok(())
//! }
//! ```
//!
//! Processes share data through objects the host keeps, passed to a child in its start
//! arguments (the SDK lists every such object it serialises there, and the child holds it
//! from its start):
//!
//! | Python (`multiprocessing`) | guest SDK (`wasmproc_guest`) |
//! |---|---|
//! | `Queue(maxsize)` | [`Queue<T>`]: `new`, `bounded`, `put`, `get`, `*_timeout`, `*_nowait`, `qsize`, `close` |
//! | `Pipe(duplex)` | [`pipe`] → two [`Connection`]s: `send`, `recv`, `poll`, `close` |
//! | `Event()` | [`Event`]: `set`, `clear`, `is_set`, `wait` |
//! | `Lock()`, `RLock()` | [`Lock`], [`RLock`]: `acquire`, `acquire_timeout`, `try_acquire`, `release`, `lock` ([`LockGuard`]) |
//! | `Semaphore(n)`, `BoundedSemaphore(n)` | [`Semaphore`], [`BoundedSemaphore`]: as locks, plus `get_value` |
//! | `connection.wait(objs, timeout)` | [`wait`] on process, queue and connection [`Sentinel`]s |
//! | `Pool(processes, initializer, initargs, maxtasksperchild)` | [`Pool`] / [`Pool::builder`] ([`PoolBuilder::initializer`]): `map`, `starmap`, `imap`, `imap_unordered`, `apply`, `apply_async`, `map_async`, `starmap_async` ([`AsyncResult`]), with `callback` and `error_callback` ([`Callbacks`]: `apply_async_with`, `map_async_with`), `close`, `join`, `terminate` |
//!
//! ```no_run
//! use wasmproc_guest::{Pool, Process, Queue, pool_fn, targets};
//!
//! fn producer(q: Queue<String>) {
//!     q.put(&"from the child".to_string()).unwrap();
//! }
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! targets![producer; pool: square]; // pool functions come after `pool:`
//!
//! fn main() -> Result<(), wasmproc_guest::Error> {
//!     let q = Queue::<String>::new()?;
//!     let p = Process::new("producer", &q)?;
//!     p.start()?;
//!     assert_eq!(q.get()?, "from the child");
//!     p.join(None)?;
//!
//!     let pool = Pool::new(4)?;
//!     assert_eq!(pool.map(pool_fn!(square), 1..=3)?, [1, 4, 9]);
//!     Ok(())
//! }
//! ```
//!
//! The layers: the bindings generated from the `wasmproc:process` WIT package (private),
//! the safe wrappers in this crate's modules, and the Python-shaped API re-exported here.
//!
//! # Caveats
//! - Errors are values: every method returns `Result`, where Python raises.
//! - Dropping a [`Process`] neither joins nor terminates the child (as in Python, where a
//!   running child stays in `active_children()`); it only releases the guest's reference.
//! - Arguments are serialised with `postcard`; a target's parameter type must match what the
//!   parent serialised, or the child ends with exit code 1 and a message naming the target.
//! - Sync objects are handles: cloning one shares the object, and dropping the last clone in
//!   a process (or `close`) means this process no longer holds it. They serialise only into
//!   a child's start arguments, a queue item or a pipe message (whose taker then holds
//!   them); anywhere else (a managed container, a file) it is an error.
//! - [`Pool`] has no background thread: it makes progress inside its own methods and those
//!   of its results; dropping it terminates its workers.
//!
//! [wasmproc]: https://example.invalid/wasmproc

#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc, clippy::missing_panics_doc)]

extern crate self as wasmproc_guest;

mod condition;
mod error;
mod managed;
mod pool;
mod process;
mod queues;
mod shared;
mod sync;

pub use condition::{Barrier, BarrierBuilder, Condition};
pub use error::{Error, ErrorKind};
pub use managed::{DictProxy, ListProxy, Manager};
pub use pool::{AsyncResult, Callbacks, IMapIter, Pool, PoolBuilder, PoolFn};
pub use process::{
    AuthKey, Builder, Process, Sentinel, active_children, authkey, cpu_count, current_process,
    exit, parent_process, wait,
};
pub use queues::{JoinableQueue, SimpleQueue};
pub use shared::{Array, RawArray, RawValue, Scalar, Value};
pub use sync::{
    BoundedSemaphore, Connection, Event, Lock, LockGuard, Queue, RLock, Semaphore, pipe,
};

/// Implementation details used by the [`targets!`] and [`pool_fn!`] macros. Not part of the
/// public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::pool::{
        Dispatch, PoolCallable, WORKER_TARGET, run_worker, set_dispatch, target_list,
    };
    pub use crate::process::{MainResult, Target, enter_child, enter_main, target_name};

    /// The bindings generated from `wit/process.wit`.
    #[allow(missing_docs, clippy::all, reason = "generated by wit-bindgen")]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "wit",
            world: "program",
            pub_export_macro: true,
            export_macro_name: "__wasmproc_export",
            default_bindings_module: "::wasmproc_guest::__private::bindings",
            runtime_path: "::wasmproc_guest::__private::wit_bindgen::rt",
        });
    }
    pub use bindings::exports::wasmproc::process::guest::Guest;
    pub use wit_bindgen;
}

/// Registers the program's targets: the functions a child process can run, by name, and,
/// after `pool:`, the functions a [`Pool`] can run.
///
/// Each target is a function taking no argument or one argument of a type that implements
/// `serde::Deserialize`; its name is the function's own name (the last path segment).
/// Invoke it once, at the top level of the program's binary crate: it also exports the
/// crate's `main` (returning `()` or `Result<(), E: Debug>`), which the host runs as the
/// main process.
///
/// ```no_run
/// fn worker(n: u32) { println!("{n}"); }
/// fn idle() {}
/// wasmproc_guest::targets![worker, idle];
/// # fn main() {}
/// ```
///
/// Pool functions take one to four arguments (or none) that implement
/// `serde::Deserialize` and return a value that implements `serde::Serialize`; name them
/// with [`pool_fn!`]. With a `pool:` section the program also has the hidden target
/// `__wasmproc_pool_worker` that pool workers run.
///
/// ```no_run
/// fn worker(n: u32) { println!("{n}"); }
/// fn square(x: i64) -> i64 { x * x }
/// fn add(a: i64, b: i64) -> i64 { a + b }
/// wasmproc_guest::targets![worker; pool: square, add];
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! targets {
    (@impl [$($target:path),*] [$($pool:path),*]) => {
        #[doc(hidden)]
        struct __WasmprocTargets;

        impl $crate::__private::Guest for __WasmprocTargets {
            fn targets() -> ::std::vec::Vec<::std::string::String> {
                $crate::__private::target_list(
                    &[$(stringify!($target)),*],
                    &[$(stringify!($pool)),*],
                )
            }

            fn run_main() -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::enter_main();
                $crate::__private::set_dispatch(__wasmproc_pool_dispatch);
                $crate::__private::MainResult::report(main())
            }

            fn run_target(
                name: ::std::string::String,
                args: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::enter_child();
                $crate::__private::set_dispatch(__wasmproc_pool_dispatch);
                $(
                    if name == $crate::__private::target_name(stringify!($target)) {
                        return $crate::__private::Target::call($target, &name, &args);
                    }
                )*
                let pool: &[&str] = &[$(stringify!($pool)),*];
                if !pool.is_empty() && name == $crate::__private::WORKER_TARGET {
                    return $crate::__private::run_worker(&args, __wasmproc_pool_dispatch);
                }
                ::std::result::Result::Err(::std::format!("program has no target named '{name}'"))
            }
        }

        #[doc(hidden)]
        fn __wasmproc_pool_dispatch(
            _name: &str,
            _input: &mut &[u8],
            _out: &mut ::std::vec::Vec<u8>,
        ) -> ::std::option::Option<::std::result::Result<(), ::std::string::String>> {
            $(
                if _name == $crate::__private::target_name(stringify!($pool)) {
                    return ::std::option::Option::Some(
                        $crate::__private::PoolCallable::call_erased(&$pool, _name, _input, _out),
                    );
                }
            )*
            ::std::option::Option::None
        }

        $crate::__private::bindings::__wasmproc_export!(__WasmprocTargets);
    };
    ($($target:path),* $(,)? ; pool: $($pool:path),* $(,)?) => {
        $crate::targets!(@impl [$($target),*] [$($pool),*]);
    };
    ($($target:path),* $(,)?) => {
        $crate::targets!(@impl [$($target),*] []);
    };
}

/// Names a function registered in [`targets!`] after `pool:`, keeping its types, for the
/// methods of [`Pool`]: `pool_fn!(square)` for `fn square(x: i64) -> i64` is a
/// [`PoolFn<i64, i64>`](PoolFn); for `fn add(a: i64, b: i64) -> i64` it is a
/// `PoolFn<(i64, i64), i64>`.
///
/// ```no_run
/// # use wasmproc_guest::{Pool, pool_fn, targets};
/// fn square(x: i64) -> i64 { x * x }
/// targets![; pool: square];
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let square = pool_fn!(square);
///     assert_eq!(Pool::new(2)?.map(square, [1, 2, 3])?, [1, 4, 9]);
///     Ok(())
/// }
/// ```
#[macro_export]
macro_rules! pool_fn {
    ($f:path) => {
        $crate::PoolFn::__new($crate::__private::target_name(stringify!($f)), $f)
    };
}
