//! A child may run another program the host allows (SPEC §3): `[programs]` in the
//! configuration, `Builder::program` in the guest SDK; under every backend.

use crate::harness::{backend_tests, lines, run, run_configured};
use wasmproc::ExitStatus;
use wasmproc_tests::*;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}
foreach_programs!(assert_test_exists);

backend_tests! {
    fn programs_main(backend) {
        let out = run_configured(
            backend,
            |c| c.programs = vec![("other".into(), PROGRAMS_OTHER.into())],
            PROGRAMS_MAIN,
        );
        assert_eq!(
            out.status,
            ExitStatus::SUCCESS,
            "{backend:?}: {}",
            out.stderr()
        );
        assert_eq!(
            out.stdout(),
            lines(&[
                "start: ()",
                "join: ()",
                "exitcode: Some(0)",
                "from the queue: \"a reply from the other program\"",
                "reply exitcode: Some(0)",
                "nested exitcode: Some(0)",
                "a program the host does not allow: error UnknownTarget: the host allows no \
                 program named 'nope' (allowed: other)",
                "this program's target in the other: error UnknownTarget: program \
                 programs_other.wasm has no target named 'local'",
                "the other's target in this program: error UnknownTarget: program \
                 programs_main.wasm has no target named 'greet'",
            ]),
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-1"),
            "other program: hello world, I am Process-1, my parent is Some(\"MainProcess\")\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-3"),
            "nested: grandchild exitcode Some(0)\n",
            "{backend:?}"
        );
        assert_eq!(
            out.stdout_of("Process-3:1"),
            "other program: hello from a child, I am Process-3:1, my parent is \
             Some(\"Process-3\")\n",
            "{backend:?}"
        );
        assert_eq!(out.stderr(), "", "{backend:?}");

        // Without a [programs] entry, no other program is reachable: the first `build`
        // fails and the program's `unwrap` panics.
        let out = run(backend, PROGRAMS_MAIN, &[]);
        assert_eq!(out.status, ExitStatus::Code(1), "{backend:?}");
        assert_eq!(out.stdout(), "", "{backend:?}");
        assert!(
            out.stderr()
                .contains("the host allows no other program (asked for 'other')"),
            "{backend:?}: {}",
            out.stderr()
        );
    }
}

backend_tests! {
    fn programs_other(backend) {
        let out = run(backend, PROGRAMS_OTHER, &[]);
        assert_eq!(out.status, ExitStatus::SUCCESS, "{backend:?}");
        assert_eq!(
            out.stdout(),
            "programs_other: a program whose targets another program runs\n"
        );
    }
}
