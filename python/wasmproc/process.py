"""Process, current_process, parent_process and active_children over the host's process
objects (multiprocessing.process). A child runs in a fresh instance of the program, as
with CPython's `spawn` start method: its Process object is pickled (target, args, kwargs
and the attributes of a subclass) into the start arguments, and the child unpickles it and
calls its run()."""

import signal
import sys
import weakref

from . import _host, _share

__all__ = ["BaseProcess", "Process", "current_process", "parent_process", "active_children"]

# The one target every Python program has: it unpickles and runs a Process object.
TARGET = "__wasmproc_python__"

_exitcode_to_name = {-signal.SIGTERM: "SIGTERM", -signal.SIGKILL: "SIGKILL"}
for _name, _signum in list(signal.__dict__.items()):
    if _name[:3] == "SIG" and "_" not in _name and isinstance(_signum, int) and _signum > 0:
        _exitcode_to_name.setdefault(-_signum, f"-{_name}")

# This process's children by handle, so that active_children() returns the same objects.
_children = weakref.WeakValueDictionary()

# Fields of a Process object that stay in this process (the rest is pickled for a child).
_LOCAL = ("_wp_h", "_wp_closed", "_wp_kind", "_wp_config", "_wp_error")


class AuthenticationString(bytes):
    def __reduce__(self):
        raise TypeError("Pickling an AuthenticationString object is disallowed for security reasons")


class _Meta(type):
    # The host object is made once the whole constructor (a subclass's too) has run, so that
    # the attributes a subclass sets after calling Process.__init__ reach the child.
    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        obj._wp_handle()
        return obj


class BaseProcess(metaclass=_Meta):
    """multiprocessing.Process: runs `target(*args, **kwargs)` (or a subclass's run()) in
    a child process."""

    def __init__(self, group=None, target=None, name=None, args=(), kwargs={}, *, daemon=None):
        assert group is None, "group argument must be None for now"
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._wp_h = None
        self._wp_closed = False
        self._wp_kind = "child"
        self._wp_config = (name or None, daemon)

    # The host object, made on first use.
    def _wp_handle(self):
        h = self._wp_h
        if h is None:
            name, daemon = self._wp_config
            try:
                data, shares = _share.dumps_for_child(_Payload(self))
            except Exception as e:
                # CPython's spawn pickles at start(): the error waits for it, and the object
                # (whose name takes its number now, as CPython's does) never runs.
                self._wp_error = e
                data, shares = b"", []
            h = _host.call(_host.process.create, TARGET, data, shares, name, daemon, None)
            self._wp_h = h
            _children[h] = self
        return h

    def run(self):
        """What the child runs: the target with its arguments. Subclasses may override it."""
        if self._target:
            self._target(*self._args, **self._kwargs)

    def start(self):
        h = self._wp_handle()
        error = getattr(self, "_wp_error", None)
        if error is not None:
            if self._wp_closed:
                raise ValueError("process object is closed")
            raise error
        sys.stdout.flush()
        sys.stderr.flush()
        _host.call(_host.process.start, h)

    def terminate(self):
        _host.call(_host.process.terminate, self._wp_handle())

    def kill(self):
        _host.call(_host.process.kill, self._wp_handle())

    def join(self, timeout=None):
        _host.call(_host.process.join, self._wp_handle(), _host.nanos(timeout))

    def is_alive(self):
        return _host.call(_host.process.is_alive, self._wp_handle())

    def close(self):
        _host.call(_host.process.close, self._wp_handle())
        self._wp_closed = True

    @property
    def name(self):
        return _host.call(_host.process.name, self._wp_handle())

    @name.setter
    def name(self, name):
        assert isinstance(name, str), "name must be a string"
        _host.call(_host.process.set_name, self._wp_handle(), name)

    @property
    def daemon(self):
        return _host.call(_host.process.daemon, self._wp_handle())

    @daemon.setter
    def daemon(self, daemonic):
        _host.call(_host.process.set_daemon, self._wp_handle(), bool(daemonic))

    @property
    def authkey(self):
        return AuthenticationString(_host.process.authkey())

    @authkey.setter
    def authkey(self, authkey):
        raise AttributeError("the run's authentication key is the host's and cannot be set")

    @property
    def exitcode(self):
        if self._wp_kind != "child":
            if self._wp_closed:
                raise ValueError("process object is closed")
            return None
        return _host.call(_host.process.exitcode, self._wp_handle())

    @property
    def ident(self):
        return _host.call(_host.process.pid, self._wp_handle())

    pid = ident

    @property
    def sentinel(self):
        return _host.call(_host.process.sentinel, self._wp_handle())

    @property
    def _identity(self):
        return ()

    def __repr__(self):
        exitcode = None
        h = self._wp_h
        if self._wp_kind == "current":
            status = "started"
        elif self._wp_closed:
            status = "closed"
        elif self._wp_kind == "parent":
            status = "unknown"
        elif _host.process.pid(h) is None:
            status = "initial"
        else:
            exitcode = _host.process.exitcode(h)
            status = "started" if exitcode is None else "stopped"
        info = [type(self).__name__, "name=%r" % (_host.process.name(h) if not self._wp_closed else "?")]
        if not self._wp_closed and self._wp_kind == "child" and status != "initial":
            info.append("pid=%s" % _host.process.pid(h))
        parent = _host.process.parent_process() if self._wp_kind != "parent" else None
        info.append("parent=%s" % (_host.process.pid(parent) if parent is not None else None))
        info.append(status)
        if exitcode is not None:
            info.append("exitcode=%s" % _exitcode_to_name.get(exitcode, exitcode))
        if not self._wp_closed and _host.process.daemon(h):
            info.append("daemon")
        return "<%s>" % " ".join(info)

    def __reduce__(self):
        raise TypeError(
            "Pickling a %s object is only done by start(): pass what the child needs as "
            "arguments instead" % type(self).__name__
        )

    def __del__(self):
        h = getattr(self, "_wp_h", None)
        if h is not None and getattr(self, "_wp_kind", None) == "child":
            try:
                _host.process.release(h)
            except Exception:
                pass


class Process(BaseProcess):
    _start_method = "spawn"


class _Payload:
    """What a child's start arguments hold: the class of the Process and its state."""

    def __init__(self, process):
        self.process = process

    def __reduce__(self):
        p = self.process
        state = {k: v for k, v in p.__dict__.items() if k not in _LOCAL}
        return (_unpickle_process, (type(p), state))


def _unpickle_process(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    _bind(obj, _host.process.current_process(), "current")
    return obj


def _bind(obj, handle, kind):
    obj._wp_h = handle
    obj._wp_closed = False
    obj._wp_kind = kind
    obj._wp_config = (None, None)
    if not hasattr(obj, "_target"):
        obj._target, obj._args, obj._kwargs = None, (), {}


class _MainProcess(BaseProcess):
    pass


class _ParentProcess(BaseProcess):
    def join(self, timeout=None):
        _host.call(_host.process.join, self._wp_h, _host.nanos(timeout))


_current = None
_parent = None


def _set_current(obj):
    global _current
    _current = obj


def current_process():
    """The Process object of the calling process."""
    global _current
    _host.check_runtime()
    if _current is None:
        obj = _MainProcess.__new__(_MainProcess)
        _bind(obj, _host.process.current_process(), "current")
        _current = obj
    return _current


def parent_process():
    """The parent's Process object; None in the main process."""
    global _parent
    _host.check_runtime()
    if _parent is None:
        h = _host.process.parent_process()
        if h is None:
            return None
        obj = _ParentProcess.__new__(_ParentProcess)
        _bind(obj, h, "parent")
        _parent = obj
    return _parent


def active_children():
    """The started children that are still running, in start order."""
    _host.check_runtime()
    out = []
    for h in _host.process.active_children():
        obj = _children.get(h)
        if obj is None:
            # Its Process object is gone; this one keeps the host's new reference.
            obj = Process.__new__(Process)
            _bind(obj, h, "child")
            _children[h] = obj
        else:
            _host.process.release(h)
        out.append(obj)
    return out
