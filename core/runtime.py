"""Process start-up tuning shared by every entry point: the app, the CLI and the benchmarks."""

from __future__ import annotations

import gc
import os
import socket
import stat
import threading

__all__ = ["settle_heap", "unstall_listeners"]

_lock = threading.Lock()
_settled = False


def settle_heap() -> bool:
    """Once per process, after start-up: collect, then freeze what is still alive (`gc.freeze`).

    What is alive once the imports and the start-up are done (modules, classes, the SDK, pandas,
    Streamlit) lives as long as the process, yet every full collection walked all of it again.
    Full collections come when many objects survive a while, as in a burst of recorded errors
    waiting for the writer: there they paused the recording thread for about a millisecond
    each and doubled record()'s mean cost (bench/errorlog.py). Frozen objects are never
    collected, so this runs once, on a heap just collected. Returns True the first time.
    """
    global _settled
    with _lock:
        if _settled:
            return False
        _settled = True
    gc.collect()
    gc.freeze()
    return True


def unstall_listeners(fd_dir: str = "/dev/fd") -> int:
    """Set TCP_NODELAY on this process's listening TCP sockets; returns how many.

    Streamlit (1.67) binds its server socket as `socket.socket(family=...)`, whose protocol
    number is 0, and asyncio sets TCP_NODELAY only on sockets created with IPPROTO_TCP, so
    every connection the app accepts has Nagle's algorithm on. A response written in two
    pieces (headers, then body) then waits for the browser's delayed ACK: 40 ms per
    static file, and a pause of 40 ms between the websocket messages of a script run
    (bench/ui.py --browser: ~150 JavaScript files on a cold visit, six at a time). Linux
    and macOS pass the option on from a listening socket to the connections it accepts, so
    setting it on the listener once is enough for every later connection. The sockets are
    reached through duplicates of their descriptors (`fd_dir` lists them; where it does not
    exist nothing is changed) and never closed.
    """
    try:
        fds = [int(name) for name in os.listdir(fd_dir) if name.isdigit()]
    except OSError:
        return 0
    changed = 0
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            duplicate = os.dup(fd)  # closed below; the original stays open
        except OSError:
            continue  # gone since it was listed
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)  # not a socket Python can wrap (say, a Unix datagram pair)
            continue
        with sock:
            try:
                listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            except OSError:
                continue
            if listening and sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                changed += 1
    return changed
