"""One line naming the data file, instead of a bare SIGBUS, when a mapped LMDB file shrinks.

LMDB reads its data file through a memory mapping. When the file is truncated (or rewritten
in place) while a process reads it, touching a page past the new end raises SIGBUS. Python
cannot handle that signal itself (its handler runs later, between bytecodes, while the
faulting access would run again at once), so the process died with Paddle's C++ report of
the signal and no word of the file. ``watch(files)`` installs a native SIGBUS handler (a
ctypes callback registered with ``sigaction``) which, for a fault inside the mapping of one
of ``files``, writes ::

    error: the data file <path> changed or was truncated while being read (SIGBUS)

to stderr and ends the process with status 2. A fault anywhere else goes to the handler that
was installed before (Paddle's): ours puts it back and returns, and the access faults again.
A DataLoader worker sends the line to its parent instead (``report_to``), which ends the run
with it as its one error line.

Async-signal safety: the address ranges and the messages are built by ``watch`` (when a file
is opened or closed), never in the handler, which only compares the fault address with the
prebuilt ranges, then calls ``os.write`` and ``os._exit`` (no buffered I/O, no lock, no
clean-up that could wait on the interrupted code). Linux only (the mappings are read from
``/proc/self/maps``); elsewhere ``watch`` does nothing.
"""

import ctypes
import os
import signal
import sys

SUPPORTED = sys.platform.startswith("linux")
_SA_SIGINFO = 4
EXIT_STATUS = 2


class _SigInfo(ctypes.Structure):
    """The head of Linux's ``siginfo_t``: for SIGBUS the fault address follows three ints (padded)."""

    _fields_ = [("si_signo", ctypes.c_int), ("si_errno", ctypes.c_int), ("si_code", ctypes.c_int),
                ("_pad", ctypes.c_int), ("si_addr", ctypes.c_void_p)]


class _SigAction(ctypes.Structure):
    """glibc's ``struct sigaction`` (the same on x86-64 and aarch64)."""

    _fields_ = [("sa_sigaction", ctypes.c_void_p), ("sa_mask", ctypes.c_ulong * (128 // ctypes.sizeof(ctypes.c_ulong))),
                ("sa_flags", ctypes.c_int), ("sa_restorer", ctypes.c_void_p)]


_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(_SigInfo), ctypes.c_void_p)
# ranges: ((start, end, message bytes), ...) of the watched mappings; fd: where the line goes;
# files: the watched paths; previous: the handler found when ours was installed.
_STATE = {"ranges": (), "fd": 2, "prefix": b"error: ", "files": (), "previous": None}


def _on_sigbus(signum, info, context):
    """The handler: the prebuilt line and ``os._exit`` for a fault in a watched file, else the
    previous handler back in place (returning re-runs the access, which faults into it)."""
    address = info.contents.si_addr or 0
    for start, end, message in _STATE["ranges"]:
        if start <= address < end:
            os.write(_STATE["fd"], message)
            os._exit(EXIT_STATUS)
    _sigaction(ctypes.byref(_STATE["previous"]), None)


_HANDLER = _HANDLER_TYPE(_on_sigbus)  # kept alive for the life of the process (and its forks)
_HANDLER_ADDRESS = ctypes.cast(_HANDLER, ctypes.c_void_p).value


_LIBC = ctypes.CDLL(None, use_errno=True) if SUPPORTED else None


def _sigaction(new, old):
    if _LIBC.sigaction(signal.SIGBUS, new, old) != 0:
        raise OSError(ctypes.get_errno(), "sigaction(SIGBUS) failed")


def _install():
    """Make ours the SIGBUS handler of this process (again, if something replaced it)."""
    current = _SigAction()
    _sigaction(None, ctypes.byref(current))
    if current.sa_sigaction == _HANDLER_ADDRESS:
        return
    _STATE["previous"] = current
    ours = _SigAction(sa_sigaction=_HANDLER_ADDRESS, sa_flags=_SA_SIGINFO)
    _sigaction(ctypes.byref(ours), None)


def message(path):
    """The line (bytes) reported for a fault in ``path``, with the current prefix."""
    text = f"the data file {path} changed or was truncated while being read (SIGBUS)\n"
    return _STATE["prefix"] + text.encode("utf-8", "backslashreplace")


def _mappings(files):
    """(start, end, message) of every mapping of ``files`` in this process."""
    wanted = {os.path.realpath(f): f for f in files}
    ranges = []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n") in wanted:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end, message(wanted[fields[5].rstrip("\n")])))
    return tuple(ranges)


def watch(files):
    """Report a SIGBUS in the mappings of ``files`` (the data files this process has open now,
    paths as the user gave them) as one line and exit 2; call again whenever the set changes."""
    if not SUPPORTED:
        return
    _STATE["files"] = tuple(str(f) for f in files)
    _STATE["ranges"] = _mappings(_STATE["files"])
    if _STATE["ranges"]:
        _install()


def report_to(fd, prefix=b""):
    """Write the line to ``fd`` (e.g. a pipe to the parent of a worker process) instead of stderr,
    after ``prefix`` (the parent adds its own ``error: ``)."""
    _STATE["fd"], _STATE["prefix"] = fd, prefix
    watch(_STATE["files"])
