"""The `guest` export of a Python program (wit/process.wit), and how its main script is
prepared at build time.

componentize-py runs the build's app module at build time and snapshots the interpreter:
there are no module files at run time, so everything a program imports must be imported
then. `prepare(module)` reads the main script's source, compiles it and runs it once as
`__mp_main__` (so that its imports are loaded into the snapshot; its `if __name__ ==
"__main__":` block does not run). At run time, every process runs the compiled script
afresh: the main process as `__main__`, a child as `__mp_main__` (aliased as `__main__`, as
CPython's spawn does) before it unpickles and runs its Process object."""

import importlib.util
import linecache
import os
import pickle
import sys
import traceback
import types

from componentize_py_types import Err
from wit_world import exports

from . import _host
from . import process as _process

_code = None
_script = None


def _install_shim():
    """`import multiprocessing` (and its submodules) gives this package: the interpreter's
    own multiprocessing needs fork or subprocesses, which a WebAssembly instance has not."""
    import wasmproc
    from wasmproc import connection, managers, pool, process, queues, sharedctypes, synchronize

    sys.modules["multiprocessing"] = wasmproc
    for name, mod in (
        ("connection", connection),
        ("managers", managers),
        ("sharedctypes", sharedctypes),
        ("pool", pool),
        ("process", process),
        ("queues", queues),
        ("synchronize", synchronize),
    ):
        sys.modules["multiprocessing." + name] = mod


def prepare(module):
    """Compiles the main script `module` (found on the build's Python path) for the run
    and loads what it imports. Called by the app module at build time."""
    global _code, _script
    _install_shim()
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"wasmproc: no main script {module!r} on the Python path")
    with open(spec.origin, "rb") as f:
        source = f.read()
    _script = os.path.basename(spec.origin)
    _code = compile(source, _script, "exec", dont_inherit=True)
    # Tracebacks show the script's lines though its file is not there at run time.
    text = source.decode("utf-8", "replace")
    linecache.cache[_script] = (len(text), None, text.splitlines(True), _script)
    _host.building = True
    try:
        _run_script("__mp_main__")
    finally:
        _host.building = False
    sys.modules.pop("__mp_main__", None)


def _run_script(name):
    mod = types.ModuleType(name)
    mod.__file__ = _script
    mod.__builtins__ = __builtins__
    sys.modules[name] = mod
    if name == "__mp_main__":
        sys.modules["__main__"] = mod
    else:
        sys.modules["__main__"] = mod
    exec(_code, mod.__dict__)
    return mod


def _ours(tb):
    """The traceback `tb` without the frames of this package (whose files are not there at
    run time): the user's frames, as far as the error."""
    here = os.path.dirname(__file__)
    frames = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(here):
            frames.append(tb)
        tb = tb.tb_next
    out = None
    for t in reversed(frames):
        out = types.TracebackType(out, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return out


def _flush():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def _exit_code(e):
    """The exit code of SystemExit `e`, as CPython's multiprocessing computes it."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    sys.stderr.write(str(e.code) + "\n")
    return 1


def _line_buffered():
    for s in (sys.stdout, sys.stderr):
        try:
            s.reconfigure(line_buffering=True)
        except Exception:
            pass


def _finish(code):
    _flush()
    if code != 0:
        _host.process.exit(code)


class Guest(exports.Guest):
    def targets(self):
        return [_process.TARGET]

    def run_main(self):
        _line_buffered()
        try:
            _run_script("__main__")
            code = 0
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException as e:
            code = 1
            traceback.print_exception(type(e), e, _ours(e.__traceback__))
        _finish(code)

    def run_target(self, name, args):
        _line_buffered()
        if name != _process.TARGET:
            raise Err(f"program has no target named '{name}'")
        try:
            _run_script("__mp_main__")
            proc = pickle.loads(args)
        except SystemExit as e:
            _finish(_exit_code(e))
            return
        except BaseException as e:
            traceback.print_exception(type(e), e, _ours(e.__traceback__))
            _finish(1)
            return
        _process._set_current(proc)
        try:
            proc.run()
            code = 0
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException as e:
            code = 1
            sys.stderr.write("Process %s:\n" % proc.name)
            traceback.print_exception(type(e), e, _ours(e.__traceback__))
        _finish(code)
