"""More than one server: N replicas of the dashboard behind nginx with sticky sessions, on local ports.

    python -m deploy.run [--replicas 2] [--port 8080] [--host 127.0.0.1] [--run-dir DIR] [--artifacts DIR]

Starts ``--replicas`` ``streamlit run dashboard/Home.py`` processes on free ports of 127.0.0.1 (each in
its own process group, all with one cookie secret and XSRF protection on), waits until each answers
``/_stcore/health``, then starts Debian's nginx (``/usr/sbin/nginx``, or ``--nginx``) on ``--host:--port``
with a configuration made from ``deploy/nginx.conf.in``. It stays in the foreground and says when a
replica dies (nginx sends that replica's visitors to the others); Ctrl-C or SIGTERM stops nginx, then
every replica with everything it started. Nothing is left behind: the replicas and nginx get SIGTERM
too if this process itself is killed.

The run folder (``--run-dir``, else a temporary folder deleted at the end) holds the generated
``nginx.conf``, nginx's pid, error and access logs (which replica served each request), each replica's
log, and ``deployment.json`` (the URL, the ports and pids), written once everything answers.

The cookie secret comes from ``STREAMLIT_SERVER_COOKIE_SECRET`` when set (a fixed deployment), else it
is made once per run; it is passed to the replicas in their environment, never on a command line.
Exit status: 0 after a clean stop, 1 when something did not start, 2 for a usage problem (nginx
missing, the port taken).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "Home.py"
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.in"
NGINX = "/usr/sbin/nginx"
AFFINITY_COOKIE = "mnist_replica"
FAIL_TIMEOUT_S = 10  # how long nginx leaves a replica alone after a refused connection


class Problem(Exception):
    """Something the person running the command can fix; its text says what."""


# --- pieces, each testable on its own ---------------------------------------------------------------------
def nginx_config(run_dir: Path, listen: str, replica_ports: list[int]) -> str:
    """The nginx configuration for ``replica_ports`` behind ``listen`` (host:port), files in ``run_dir``."""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout={FAIL_TIMEOUT_S}s;"
                        for p in replica_ports)
    # As root nginx would switch its worker to nobody, who cannot enter a private run folder.
    user = "user root;" if os.geteuid() == 0 else ""
    return (TEMPLATE.read_text().replace("@RUN@", str(run_dir)).replace("@LISTEN@", listen)
            .replace("@SERVERS@", servers).replace("@USER@", user))


def replica_command(port: int) -> list[str]:
    """One replica: the app on 127.0.0.1:``port`` (only nginx talks to it)."""
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"]


def replica_env(cookie_secret: str, artifacts: str | None = None) -> dict[str, str]:
    """A replica's environment: this one, plus the shared cookie secret and XSRF protection on (a browser
    moved to another replica keeps a valid XSRF cookie and signed cookies)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", STREAMLIT_SERVER_COOKIE_SECRET=cookie_secret,
               STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION="true")
    if artifacts:
        env["MNIST_ARTIFACTS"] = str(Path(artifacts).resolve())
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """Raise Problem when ``host:port`` cannot be listened on (taken, or not an address of this machine)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does: a closed port is free
        try:
            s.bind((host, port))
        except OSError as e:
            raise Problem(f"cannot listen on {host}:{port} ({e.strerror}): is another server using it? "
                          "Choose another with --port.") from None


def find_nginx(path: str) -> str:
    found = shutil.which(path)
    if not found:
        raise Problem(f"nginx not found at {path}: install it (apt-get install -y nginx) or pass --nginx PATH.")
    return found


def healthy(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
        return r.status == 200
    return False


def _die_with_parent() -> None:
    """In a child before exec: its own session (Ctrl-C reaches only us, who stop things in order) and
    SIGTERM when this process dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10) -> None:
    """``sig`` to the process group of ``proc``; SIGKILL to whatever of it is left ``grace_s`` later."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- the deployment ---------------------------------------------------------------------------------------
class Deployment:
    """N replicas and nginx; ``start()`` then ``stop()`` (idempotent)."""

    def __init__(self, replicas: int, host: str, port: int, run_dir: Path, nginx: str, artifacts=None,
                 timeout_s: float = 300, say=print):
        self.n, self.host, self.port, self.run_dir = replicas, host, port, run_dir
        self.nginx, self.artifacts, self.timeout_s, self.say = nginx, artifacts, timeout_s, say
        self.replicas: list[tuple[int, subprocess.Popen]] = []  # (port, process)
        self.proxy: subprocess.Popen | None = None
        self.dead: set[int] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        secret = os.environ.get("STREAMLIT_SERVER_COOKIE_SECRET") or secrets.token_hex(32)
        env = replica_env(secret, self.artifacts)
        for i in range(self.n):
            port = free_port()
            log = open(self.run_dir / f"replica-{i}.log", "wb")  # noqa: SIM115 (the child keeps it)
            with log:
                proc = subprocess.Popen(replica_command(port), cwd=ROOT, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            self.replicas.append((port, proc))
        self.say(f"starting {self.n} replicas on ports {', '.join(str(p) for p, _ in self.replicas)} ...")
        deadline = time.monotonic() + self.timeout_s
        waiting = dict(enumerate(self.replicas))
        while waiting:
            for i, (port, proc) in list(waiting.items()):
                if proc.poll() is not None:
                    raise Problem(f"replica {i} exited with {proc.returncode} before answering; its log "
                                  f"({self.run_dir / f'replica-{i}.log'}) ends:\n{self.log_tail(i)}")
                if healthy(f"http://127.0.0.1:{port}"):
                    del waiting[i]
            if waiting and time.monotonic() > deadline:
                raise Problem(f"replicas {sorted(waiting)} did not answer /_stcore/health within "
                              f"{self.timeout_s:.0f} s")
            time.sleep(0.2)

        conf = self.run_dir / "nginx.conf"
        (self.run_dir / "tmp").mkdir(exist_ok=True)
        conf.write_text(nginx_config(self.run_dir, f"{self.host}:{self.port}", [p for p, _ in self.replicas]))
        errors = open(self.run_dir / "nginx.out", "wb")  # noqa: SIM115 (the child keeps it)
        with errors:
            # -e: the error log before the configuration is read (else /var/log/nginx, maybe not writable).
            self.proxy = subprocess.Popen([self.nginx, "-p", str(self.run_dir), "-c", str(conf), "-e",
                                           str(self.run_dir / "error.log")], stdout=errors,
                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        while not healthy(self.url):
            if self.proxy.poll() is not None:
                raise Problem(f"nginx exited with {self.proxy.returncode}:\n{self._nginx_errors()}")
            if time.monotonic() > deadline:
                raise Problem(f"nginx did not answer on {self.url}:\n{self._nginx_errors()}")
            time.sleep(0.1)
        (self.run_dir / "deployment.json").write_text(json.dumps({
            "url": self.url, "run_dir": str(self.run_dir), "nginx_pid": self.proxy.pid,
            "replicas": [{"port": p, "pid": proc.pid} for p, proc in self.replicas]}, indent=1))
        self.say(f"ready: {self.url} ({self.n} replicas behind nginx; files in {self.run_dir})")

    def watch(self) -> None:
        """Say once when a replica or nginx has died."""
        for i, (port, proc) in enumerate(self.replicas):
            if i not in self.dead and proc.poll() is not None:
                self.dead.add(i)
                alive = self.n - len(self.dead)
                self.say(f"replica {i} (port {port}) exited with {proc.returncode}; nginx sends its visitors "
                         f"to the {alive} other{'s' if alive != 1 else ''}" if alive else
                         f"replica {i} (port {port}) exited with {proc.returncode}; no replica is left")
        if self.proxy is not None and self.proxy.poll() is not None:
            raise Problem(f"nginx exited with {self.proxy.returncode}:\n{self._nginx_errors()}")

    def stop(self) -> None:
        # nginx first, so no visitor reaches a replica that is going; SIGTERM is its fast shutdown
        # (SIGQUIT would wait for every open WebSocket).
        if self.proxy is not None:
            stop(self.proxy)
        for _, proc in self.replicas:
            stop(proc)
        self.replicas, self.proxy = [], None

    def log_tail(self, i: int, chars: int = 3000) -> str:
        return (self.run_dir / f"replica-{i}.log").read_text(errors="replace")[-chars:]

    def _nginx_errors(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in
                         (self.run_dir / "nginx.out", self.run_dir / "error.log") if p.exists())


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m deploy.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=2, help="Streamlit processes (default 2)")
    p.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="nginx's address (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--run-dir", type=Path, help="where the configuration, logs and deployment.json go "
                   "(default: a temporary folder, deleted at the end)")
    p.add_argument("--artifacts", metavar="DIR", help="trained models the replicas use (default: artifacts/)")
    p.add_argument("--nginx", default=NGINX, help=f"the nginx program (default {NGINX})")
    p.add_argument("--timeout", type=float, default=300, help="seconds the replicas may take to start")
    args = p.parse_args(argv)
    if args.replicas < 1:
        p.error("--replicas must be at least 1")
    if not 0 <= args.port <= 65535:
        p.error("--port must be between 0 and 65535")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        nginx = find_nginx(args.nginx)
        port = args.port or free_port()
        check_port(args.host, port)
    except Problem as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run_dir = args.run_dir.resolve() if args.run_dir else Path(tempfile.mkdtemp(prefix="mnist-deploy-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    say = lambda s: print(s, flush=True)

    def stop_signal(signum, frame):
        raise KeyboardInterrupt  # Ctrl-C and SIGTERM alike: leave the loop, stop everything below

    signal.signal(signal.SIGTERM, stop_signal)
    deployment = Deployment(args.replicas, args.host, port, run_dir, nginx, args.artifacts, args.timeout, say)
    code = 0
    try:
        deployment.start()
        while True:
            deployment.watch()
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping ...")
    except Problem as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the stopping short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        deployment.stop()
        if not args.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
    say("stopped: nginx and every replica")
    return code


if __name__ == "__main__":
    sys.exit(main())
