"""drum zygote: one warm interpreter per master generation that forks predictors.

This source is appended to bridge.py and run by ZygoteBootstrap (see embed.go), so the
bridge's functions are module globals here. The master starts it with

    fd 3  the boot pipe: one frame (this source), then nothing; EOF means the master is gone
    fd 4  the fork socket (SOCK_SEQPACKET), shared by every worker of the generation

It imports the heavy libraries once (numpy, pandas, scikit-learn) and forks one predictor per
request, so predictors share those pages copy-on-write instead of each importing them. The
cyclic GC stays off here and gc.freeze() runs before each fork, so the children's collections
never write to the shared objects.

What runs where. A model with hooks loads in the child, exactly as a spawned predictor loads
it: custom.py's module code, init and load_model run once per predictor, as DRUM runs them
once per gunicorn worker. A drop-in pickle (no custom.py) is unpickled once by the zygote and
each child uses that copy while the file is unchanged (else it unpickles the new file). A new
generation (SIGHUP) gets a new zygote that has never seen the old code or model.

A fork request is one message, JSON {"boot": <bridge config>, "env": ["K=V", ...],
"worker_pid": N}, with six descriptors: the predictor's request pipe (read end), reply pipe
(write end), stdout, stderr, a pidfd of the asking worker and the status socket. On the status
socket the zygote answers {"pid": N} with a pidfd of the child (or {"error": "..."}), and,
once it has reaped the child, {"exit": "signal: killed"} (Go's wording), then closes it.

The child dies with its worker, whose child it is not: EOF on its request pipe ends an idle
predictor, a thread in the child watches the worker's pidfd, and the zygote (its parent, so
no pid-reuse risk) kills it when that pidfd fires, which also covers user code holding the GIL.

Forking is only safe with a single thread: a thread forked mid-operation leaves its locks held
forever in the child. OpenBLAS and numexpr start pools at import (both register pthread_atfork
handlers, libgomp, pulled in by scikit-learn, does not), so the master caps every known pool
at one thread in our environment, the zygote checks that /proc/self/task has exactly one entry
after its imports (and after unpickling), and each child restores the user's settings. When the
check fails the zygote refuses every request with the reason and workers spawn predictors.
"""

import gc as _gc
import select as _select
import socket as _socket

_POOL_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")  # see zygote.go
# The libraries nearly every DRUM model uses, and the scikit-learn estimators most pickles
# and joblib files hold: each would otherwise be imported privately by every predictor.
_PRELOAD = (
    "numpy",
    "pandas",
    "threadpoolctl",
    "joblib",
    "sklearn",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.impute",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
)
_PRELOADED_MODEL = None  # (path, identity, model): a drop-in pickle the zygote unpickled
_SIGNAL_NAMES = {  # Go's os.ProcessState wording, so both start modes explain deaths alike
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
    signal.SIGHUP: "hangup",
    signal.SIGQUIT: "quit",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGPIPE: "broken pipe",
}
BOOT_FD = 3
FORK_FD = 4


def _thread_count():
    return len(os.listdir("/proc/self/task"))


def _describe_status(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return "signal: " + _SIGNAL_NAMES.get(sig, "signal %d" % sig)
    return "exit status %d" % os.WEXITSTATUS(status)


def _preload():
    """Imports the shared libraries (their thread pools capped by the master through the
    environment); returns why forking is unsafe, or ""."""
    try:  # pidfds (Linux 5.3, Python 3.9) let the worker kill its predictor without pid reuse
        os.close(os.pidfd_open(os.getpid()))
        _socket.send_fds  # Python 3.9
    except (AttributeError, OSError) as exc:
        return "this system cannot hand out pidfds (needs Linux >= 5.3 and Python >= 3.9): %s" % (exc,)
    loaded = []
    for name in _PRELOAD:
        try:
            __import__(name)
            loaded.append(name)
        except Exception as exc:  # a missing optional library is not an error
            log("debug", "zygote: not preloading %s: %s" % (name, exc))
    threads = _thread_count()
    log("info", "zygote: libraries imported", preloaded=loaded, threads=threads)
    if threads != 1:
        return "the zygote runs %d threads after importing %s; forking it is not safe" % (
            threads,
            ", ".join(loaded),
        )
    if "numpy" in loaded and "threadpoolctl" not in loaded:
        log("warn", "zygote: threadpoolctl is missing: forked predictors keep BLAS at one thread")
    return ""


def _file_identity(path):
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _preload_model(code_dir):
    """Unpickles a drop-in .pkl artifact once, so forked predictors share it (and the
    modules it imports) copy-on-write. Only without custom.py: a model with hooks runs its
    module code, init and load_model in each predictor, as DRUM does per gunicorn worker.
    Returns why forking became unsafe, or ""."""
    global _PRELOADED_MODEL
    if not code_dir or any(Path(code_dir).rglob("custom.py")):
        return ""
    try:
        path = Model({"code_dir": code_dir, "target_type": "regression"})._detect_artifact()
        if not path.lower().endswith(".pkl"):
            return ""
        identity = _file_identity(path)
        model = _pickle_load(path)
    except BaseException as exc:  # the predictor reports load errors itself, as DRUM words them
        log("debug", "zygote: not preloading the model: %s" % (exc,))
        return ""
    _PRELOADED_MODEL = (path, identity, model)
    log("info", "zygote: model artifact preloaded", artifact=path)
    threads = _thread_count()
    if threads != 1:
        return "the zygote runs %d threads after unpickling %s; forking it is not safe" % (threads, path)
    return ""


def _use_preloaded_model():
    """In the child: the bridge's unpickling of the artifact returns the zygote's copy,
    unless the file changed since."""
    global _pickle_load
    unpickle = _pickle_load

    def load(path):
        if _PRELOADED_MODEL is not None:
            pre_path, identity, model = _PRELOADED_MODEL
            try:
                if path == pre_path and _file_identity(path) == identity:
                    return model
            except OSError:
                pass
        return unpickle(path)

    _pickle_load = load


def _restore_pools(saved_env):
    """In the child: undo the zygote's thread caps, as a fresh interpreter would have them."""
    for name in _POOL_VARS:
        if saved_env.get(name) is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved_env[name]
    cores = os.cpu_count() or 1
    if "threadpoolctl" in sys.modules:
        import threadpoolctl

        for api, var in (("blas", "OPENBLAS_NUM_THREADS"), ("openmp", "OMP_NUM_THREADS")):
            want = saved_env.get(var)
            try:
                threadpoolctl.threadpool_limits(limits=int(want) if want else cores, user_api=api)
            except Exception as exc:
                log("warn", "could not restore %s threads: %s" % (api, exc))
    if "numexpr" in sys.modules:
        want = saved_env.get("NUMEXPR_NUM_THREADS")
        try:
            sys.modules["numexpr"].set_num_threads(int(want) if want else min(cores, 8))
        except Exception as exc:
            log("warn", "could not restore numexpr threads: %s" % (exc,))


def _watch_worker(pidfd):
    """In the child: die with the worker that asked for us (we are not its child, so
    PR_SET_PDEATHSIG cannot do it). EOF on the request pipe covers an idle predictor; this
    covers one busy in the user's code."""
    import threading

    def wait():
        p = _select.poll()
        p.register(pidfd, _select.POLLIN)
        while not p.poll():
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait, name="drum-worker-watch", daemon=True).start()


def _set_title(title):
    """Best effort: shows the child as a predictor in ps (its command line is the zygote's
    otherwise), by overwriting the argument area in place, and names its main thread."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (stat fields 48, 49)
        raw = title.encode()[: end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(raw + b"\0" * (end - start - len(raw)))
    except (OSError, ValueError, IndexError):
        pass
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, b"drum-predictor", 0, 0, 0)  # PR_SET_NAME
    except Exception:
        pass


def _child(req, saved_env, fds, status_sock, others):
    """Runs in the forked child: becomes a bridge predictor on the worker's pipes."""
    req_r, rep_w, out_w, err_w, worker_pidfd = fds
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    status_sock.close()
    for fd in others:  # the zygote's own descriptors and the other children's sockets and pidfds
        try:
            os.close(fd)
        except OSError:
            pass
    global _LOG_FD
    if _LOG_FD is not None:  # the zygote's log channel; main() opens the predictor's own
        os.close(_LOG_FD)
        _LOG_FD = None
    logging.getLogger().handlers.clear()
    sys.stdout.flush()
    sys.stderr.flush()
    for src, dst in ((req_r, REQUEST_FD), (rep_w, REPLY_FD), (out_w, 1), (err_w, 2)):
        os.dup2(src, dst)  # replaces the boot pipe and the fork socket on 3 and 4
        os.close(src)
    for kv in req.get("env") or []:
        k, _, v = kv.partition("=")
        os.environ[k] = v
    _set_title("drum predictor: forked by zygote %d for worker %s" % (os.getppid(), req.get("worker_pid")))
    _restore_pools(saved_env)
    _use_preloaded_model()
    _gc.enable()
    _watch_worker(worker_pidfd)
    sys.argv = ["drum-predictor"]
    code = 1
    try:
        code = main(json.dumps(req["boot"]).encode())
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code or 0)


def _send(sock, msg, fds=()):
    try:
        _socket.send_fds(sock, [json.dumps(msg).encode()], list(fds))
        return True
    except OSError:
        return False  # the worker gave up on this request


class _Children:
    """The zygote's live children: pid -> (status socket, pidfd of the worker it serves).
    A worker that dies gets its predictor killed here too: the child's own watch thread may
    be stuck behind user code that holds the GIL, and only the zygote, its parent, can kill
    it with no risk of hitting a reused pid."""

    def __init__(self, poller):
        self.poller = poller
        self.by_pid = {}
        self.by_worker = {}  # worker pidfd -> child pid

    def add(self, pid, status_sock, worker_pidfd):
        self.by_pid[pid] = (status_sock, worker_pidfd)
        self.by_worker[worker_pidfd] = pid
        self.poller.register(worker_pidfd, _select.POLLIN)

    def fds(self):
        return [fd for sock, wfd in self.by_pid.values() for fd in (sock.fileno(), wfd)]

    def worker_exited(self, worker_pidfd):
        """Kills the child of a worker that exited; True if worker_pidfd was one of ours."""
        pid = self.by_worker.pop(worker_pidfd, None)
        if pid is None:
            return False
        self.poller.unregister(worker_pidfd)  # closed on reaping, so the number stays ours
        os.kill(pid, signal.SIGKILL)
        return True

    def reaped(self, pid, status):
        entry = self.by_pid.pop(pid, None)
        if entry is None:
            return
        sock, worker_pidfd = entry
        _send(sock, {"exit": _describe_status(status)})
        sock.close()
        if self.by_worker.pop(worker_pidfd, None) is not None:
            self.poller.unregister(worker_pidfd)
        os.close(worker_pidfd)


def zygote_main(boot_meta):
    cfg = json.loads(boot_meta)
    _configure_logging(cfg.get("log_level", "info"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master decides when we stop
    # The master caps the pools at one thread in our environment and passes the user's own
    # values (None: unset) for the children to restore.
    saved_env = cfg.get("pool_env") or {}
    # No collections in the zygote: they would leave freed holes in pages the children
    # share, and gc.freeze() before each fork keeps the children's collections off them.
    _gc.disable()
    unsafe = _preload() or _preload_model(cfg.get("code_dir"))
    if unsafe:
        log("warn", "zygote: refusing to fork predictors: " + unsafe)

    fork_sock = _socket.socket(fileno=FORK_FD)
    os.set_inheritable(BOOT_FD, False)
    fork_sock.set_inheritable(False)
    # SIGCHLD wakes the poll loop through a pipe, so children are reaped promptly.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    poller = _select.poll()
    children = _Children(poller)
    poller.register(BOOT_FD, _select.POLLIN)
    poller.register(fork_sock.fileno(), _select.POLLIN)
    poller.register(wake_r, _select.POLLIN)
    log("debug", "zygote: ready for fork requests")
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, ev in events:
            if fd == BOOT_FD:
                if not os.read(BOOT_FD, 4096):
                    log("debug", "zygote: master gone; exiting")
                    return 0
            elif fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                _reap(children)
            elif children.worker_exited(fd):
                pass
            elif fd == fork_sock.fileno():
                try:
                    _serve_request(fork_sock, children, saved_env, unsafe, [BOOT_FD, wake_r, wake_w])
                except Exception as exc:  # one bad request must not end the zygote
                    log("error", "zygote: fork request failed: %r" % (exc,), traceback=traceback.format_exc())


def _reap(children):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.reaped(pid, status)


def _serve_request(fork_sock, children, saved_env, unsafe, own_fds):
    try:
        data, fds, _flags, _addr = _socket.recv_fds(fork_sock, 1 << 20, 8)  # big label lists fit
    except (BlockingIOError, InterruptedError):
        return
    if len(fds) != 6:
        for fd in fds:
            os.close(fd)
        log("error", "zygote: fork request with %d descriptors, want 6; ignored" % len(fds))
        return
    status_sock = _socket.socket(fileno=fds[5])
    child_fds = fds[:5]
    try:
        if unsafe:
            _send(status_sock, {"error": unsafe})
            return
        try:
            req = json.loads(data)
        except ValueError as exc:
            _send(status_sock, {"error": "undecodable fork request: %s" % exc})
            return
        others = own_fds + [fork_sock.fileno()] + children.fds()
        _gc.freeze()
        pid = os.fork()
        if pid == 0:
            _child(req, saved_env, child_fds, status_sock, others)  # never returns
        # Reaped (and reported) by _reap whatever happens next; the worker's pidfd stays open.
        children.add(pid, status_sock, child_fds.pop())
        sock, status_sock = status_sock, None
        try:
            pidfd = os.pidfd_open(pid)  # the child is ours and unreaped: this is it, not a reused pid
        except OSError as exc:
            os.kill(pid, signal.SIGKILL)
            _send(sock, {"error": "pidfd_open of the forked predictor: %s" % (exc,)})
            return
        try:
            sent = _send(sock, {"pid": pid}, [pidfd])
        finally:
            os.close(pidfd)
        if not sent:
            os.kill(pid, signal.SIGKILL)  # nobody will talk to it
    finally:
        for fd in child_fds:
            os.close(fd)
        if status_sock is not None:
            status_sock.close()
