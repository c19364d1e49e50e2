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
//! The layers: the bindings generated from the `wasmproc:process` WIT package (private),
//! the safe wrappers in this crate's modules, and the Python-shaped API re-exported here.
//!
//! # Caveats
//! - Errors are values: every method returns `Result`, where Python raises.
//! - Dropping a [`Process`] neither joins nor terminates the child (as in Python, where a
//!   running child stays in `active_children()`); it only releases the guest's reference.
//! - Arguments are serialised with `postcard`; a target's parameter type must match what the
//!   parent serialised, or the child ends with exit code 1 and a message naming the target.
//!
//! [wasmproc]: https://example.invalid/wasmproc

#![deny(missing_docs)]

extern crate self as wasmproc_guest;

mod error;
mod process;

pub use error::{Error, ErrorKind};
pub use process::{
    AuthKey, Builder, Process, Sentinel, active_children, authkey, cpu_count, current_process,
    exit, parent_process, wait,
};

/// Implementation details used by the [`targets!`] macro. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::process::{MainResult, Target, enter_child, enter_main, target_name};

    /// The bindings generated from `wit/process.wit`.
    #[allow(missing_docs, clippy::all)]
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit",
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

/// Registers the program's targets: the functions a child process can run, by name.
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
#[macro_export]
macro_rules! targets {
    ($($target:path),* $(,)?) => {
        #[doc(hidden)]
        struct __WasmprocTargets;

        impl $crate::__private::Guest for __WasmprocTargets {
            fn targets() -> ::std::vec::Vec<::std::string::String> {
                ::std::vec![$($crate::__private::target_name(stringify!($target)).to_string()),*]
            }

            fn run_main() -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::enter_main();
                $crate::__private::MainResult::report(main())
            }

            fn run_target(
                name: ::std::string::String,
                args: ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::__private::enter_child();
                $(
                    if name == $crate::__private::target_name(stringify!($target)) {
                        return $crate::__private::Target::call($target, &name, &args);
                    }
                )*
                ::std::result::Result::Err(::std::format!("program has no target named '{name}'"))
            }
        }

        $crate::__private::bindings::__wasmproc_export!(__WasmprocTargets);
    };
}
