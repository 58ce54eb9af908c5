"""Benchmark scenarios, one command each, against our server and peer servers.

    python -m bench.run fanout                               # ours, uvloop backend
    python -m bench.run fanout rooms --backend uvloop,asyncio,select --server ours,ngircd
    python -m bench.run idle --clients 2000 --server ours --backend select
    python -m bench.run connect --port 6667 --server-pid 1234   # a server already running

Scenarios (defaults; any loadgen option given here overrides them):

fanout   1 channel, 200 clients, 10 senders at max rate (flow-controlled window)
rooms    2000 clients in 200 channels of 10, 200 senders at 20 msg/s each
idle     --clients registered idle connections (default 10000): server RSS each
connect  connect/register/QUIT churn: registrations per second
history  our server only: the fanout load with history off (--db ''), SQLite only,
         and SQLite + Redis (a redis-server started on a free port, no
         persistence), interleaved per repeat; then CHATHISTORY LATEST latency
         (bench.histlat) with a warm cache, a cold one (FLUSHALL before each
         request) and no Redis at all

Each started server is pinned to core 0 (``taskset -c 0``), the generator to core 1,
both on free loopback ports; started servers are stopped at the end. With
``--port`` the scenario targets a server that is already running (pass
``--server-pid`` for CPU and RSS figures). Results print as a table; ``--out FILE``
appends one JSON object per run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import Options, machine_busy_seconds, proc_cpu_seconds

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SERVER_CORE = "0"
GENERATOR_CORE = "1"
RT = -100  # internal nice value meaning SCHED_FIFO (--rt; see pinned())
PEERS = ("ngircd", "inspircd")
BACKENDS = ("uvloop", "asyncio", "select")
# The history scenario's fan-out configurations: history off, SQLite, SQLite + Redis.
HISTORY_CONFIGS = ("off", "sqlite", "sqlite+redis")

SCENARIOS: dict[str, dict[str, Any]] = {
    "fanout": {
        "mode": "traffic",
        "clients": 200,
        "rooms": 1,
        "senders": 10,
        "rate": 0.0,
        "samplers": 2,
        "window": 200,
    },
    "rooms": {
        "mode": "traffic",
        "clients": 2000,
        "rooms": 200,
        "senders": 200,
        "rate": 20.0,
        "samplers": 1,
        "window": 200,
    },
    # ngircd's small listen backlog resets connections at high connect concurrency.
    "idle": {
        "mode": "idle",
        "clients": 10000,
        "warmup": 0.0,
        "duration": 5.0,
        "senders": 0,
        "concurrency": 20,
    },
    "connect": {"mode": "connect", "concurrency": 50, "clients": 1, "senders": 0},
}
# history: the fanout load under each of HISTORY_CONFIGS (see run_history).
SCENARIOS["history"] = dict(SCENARIOS["fanout"])
# CHATHISTORY latency (bench.histlat): requests per mode, messages per request, stored.
HISTLAT = {"requests": 200, "limit": 50, "fill": 500}
# Options a scenario run may override from the command line.
OVERRIDABLE = (
    "clients",
    "rooms",
    "senders",
    "rate",
    "duration",
    "warmup",
    "size",
    "window",
    "samplers",
    "concurrency",
    "setup_timeout",
    "drain",
)


# --------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout:.0f}s")


def machine_busy_pct(interval: float = 1.0) -> float | None:
    """Busy CPU % (of one core, summed over cores) over ``interval`` seconds."""
    a = machine_busy_seconds()
    time.sleep(interval)
    b = machine_busy_seconds()
    return None if a is None or b is None else 100 * (b - a) / interval


def wait_quiet(threshold: float, max_wait: float) -> tuple[float, float | None]:
    """Wait (at most ``max_wait`` s) until the machine is below ``threshold`` % busy.

    Other people's processes on a shared machine steal the cores the benchmark
    pins itself to. Returns (seconds waited, last busy % seen).
    """
    t0 = time.monotonic()
    busy = machine_busy_pct()
    while busy is not None and busy > threshold and time.monotonic() - t0 < max_wait:
        busy = machine_busy_pct()
    return time.monotonic() - t0, busy


def pinned(core: str, nice: int, argv: list[str]) -> list[str]:
    """``argv`` pinned to ``core``; nice > 0 or < 0 renices, nice == RT uses SCHED_FIFO."""
    prefix: list[str] = []
    if shutil.which("taskset"):
        prefix += ["taskset", "-c", core]
    if nice == RT:
        # Real-time priority: preempts every normal task at once; the kernel's RT
        # throttling (sched_rt_runtime_us) still leaves others 5% of the core.
        prefix += ["chrt", "--fifo", "10"]
    elif nice:
        prefix += ["nice", "-n", str(nice)]
    return prefix + argv


def raise_nofile(needed: int) -> None:
    """Children (servers, generator) inherit this process's limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def revision() -> str:
    """HEAD of the work tree, with '+dirty' when server/ or chat/ have local edits."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "server", "chat"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head + ("+dirty" if dirty else "") if head else "unknown"


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError), open("/proc/loadavg", encoding="utf-8") as f:
        load = f.read().split()[:3]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg": " ".join(load),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


# --------------------------------------------------------------------- servers


@dataclass
class Target:
    """A server to measure: started by us (kind ours/ngircd/inspircd) or external."""

    kind: str  # "ours", "ngircd", "inspircd", "external"
    backend: str = ""
    port: int = 0
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    tmpdir: tempfile.TemporaryDirectory[str] | None = None
    command: list[str] = field(default_factory=list)
    redis_pid: int | None = None  # the Redis cache our server uses, if any

    @property
    def label(self) -> str:
        if self.kind == "ours":
            return f"ours/{self.backend}"
        return self.kind

    def log_tail(self, limit: int = 3000) -> str:
        if self.tmpdir is None:
            return ""
        path = Path(self.tmpdir.name) / "server.log"
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-limit:]
        return ""


# All the load comes from 127.0.0.1: lift our server's per-host limits and flood
# control, as the peers' configurations below do for theirs (when the flag exists).
OURS_BENCH_FLAGS = {
    "--max-per-host": "0",
    "--throttle-burst": "0",
    "--flood-burst": "0",
    "--max-clients": "0",
    "--scan-burst": "0",  # histlat's CHATHISTORY and SEARCH, hundreds from one address
}


def ours_help() -> str:
    """``python -m server --help`` of this revision ('' if it fails)."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "server", "--help"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def ours_bench_flags() -> list[str]:
    """The OURS_BENCH_FLAGS that this revision of ``python -m server`` accepts."""
    text = ours_help()
    flags: list[str] = []
    for flag, value in OURS_BENCH_FLAGS.items():
        if flag + " " in text or flag + "=" in text or flag + "\n" in text:
            flags += [flag, value]
    return flags


NGIRCD_CONF = """\
[Global]
    Name = bench.ngircd.local
    Info = benchmark peer
    Listen = {host}
    Ports = {port}
    MotdPhrase = bench
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    MaxPenaltyTime = 0
    PingTimeout = 120
    PongTimeout = 60
[Options]
    DNS = no
    Ident = no
    PAM = no
"""

INSPIRCD_CONF = """\
<server name="bench.inspircd.local" description="benchmark peer" network="Bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="{host}" port="{port}" type="clients">
<connect name="main" allow="127.0.0.1" maxchans="100" localmax="200000" globalmax="200000"
         maxconnwarn="off" limit="200000" modes="+x" pingfreq="120" timeout="60"
         hardsendq="1048576" softsendq="1048576" recvq="65536"
         threshold="1000000" commandrate="100000000" fakelag="off" useident="no"
         resolvehostnames="no" usednsbl="no">
<performance netbuffersize="65536" somaxconn="1024" softlimit="{softlimit}"
             clonesonconnect="no" timeskipwarn="0" quietbursts="yes">
<options allowcoreunload="no" hostintopic="no" pingwarning="0" splitwhois="no">
<security announceinvites="dynamic" hideserver="" userstats="Pu" customversion=""
          runasuser="" runasgroup="" restrictbannedusers="yes" genericoper="no"
          maxtargets="20">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="10" maxhost="64"
        maxquit="255" maxtopic="307" maxkick="255" maxreal="128" maxgecos="128"
        maxaway="200">
<channels users="200" opers="200">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/ircd.log">
<files motd="{dir}/motd.txt">
<dns timeout="1">
"""


def start_server(
    kind: str,
    backend: str,
    nice: int,
    extra_args: list[str],
    timeout: float,
    history: bool,
    redis_url: str | None = None,
) -> Target:
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
    log = open(Path(tmp.name) / "server.log", "wb")  # noqa: SIM115 - closed below
    target = Target(kind, backend, port, tmpdir=tmp)
    env = dict(os.environ)
    if kind == "ours":
        argv = [sys.executable, "-m", "server", "--host", HOST, "--port", str(port)]
        argv += ["--backend", backend, "--log-level", "warning"]
        # History on (the default) but in the temp dir, never a chat.db in the work tree.
        argv += ["--db", str(Path(tmp.name) / "history.db") if history else ""]
        if redis_url:
            argv += ["--redis", redis_url]
        argv += ours_bench_flags() + extra_args
        for name in list(env):
            if name.startswith("CHAT_"):
                env.pop(name)
        cwd = str(REPO_ROOT)
    elif kind == "ngircd":
        exe = shutil.which("ngircd") or "/usr/sbin/ngircd"
        conf = Path(tmp.name) / "ngircd.conf"
        conf.write_text(NGIRCD_CONF.format(host=HOST, port=port, dir=tmp.name))
        argv = [exe, "--nodaemon", "--config", str(conf)]
        cwd = tmp.name
    elif kind == "inspircd":
        exe = shutil.which("inspircd") or "/usr/sbin/inspircd"
        conf = Path(tmp.name) / "inspircd.conf"
        (Path(tmp.name) / "motd.txt").write_text("bench\n")
        softlimit = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100
        conf.write_text(
            INSPIRCD_CONF.format(host=HOST, port=port, dir=tmp.name, softlimit=softlimit)
        )
        argv = [exe, "--nofork", "--runasroot", f"--config={conf}"]
        cwd = tmp.name
    else:
        raise ValueError(kind)
    target.command = pinned(SERVER_CORE, nice, argv)
    try:
        target.proc = subprocess.Popen(
            target.command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    finally:
        log.close()
    target.pid = target.proc.pid  # taskset and nice exec the server: same PID
    try:
        wait_listening(port, target.proc, timeout)
    except RuntimeError as e:
        tail = target.log_tail()
        stop_server(target)
        raise RuntimeError(f"{target.label}: {e}\n{tail}") from None
    time.sleep(0.3)  # let the readiness probe's connection go away
    return target


def stop_server(target: Target) -> None:
    proc = target.proc
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if target.tmpdir is not None:
        target.tmpdir.cleanup()
        target.tmpdir = None


@contextlib.contextmanager
def server(
    kind: str,
    backend: str,
    nice: int,
    extra_args: list[str],
    timeout: float,
    history: bool,
    redis_url: str | None = None,
) -> Iterator[Target]:
    target = start_server(kind, backend, nice, extra_args, timeout, history, redis_url)
    try:
        yield target
    finally:
        stop_server(target)


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes]
    tmpdir: tempfile.TemporaryDirectory[str]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


@contextlib.contextmanager
def redis_server(nice: int, timeout: float, core: str = SERVER_CORE) -> Iterator[RedisServer]:
    """A throw-away redis-server on a free loopback port: no RDB, no AOF, temp dir.

    Pinned to the server's core by default: the cache is part of the server side's cost.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="bench-redis-")
    argv = [exe, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    argv += ["--dir", tmp.name, "--daemonize", "no", "--logfile", str(Path(tmp.name) / "log")]
    proc = subprocess.Popen(
        pinned(core, nice, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc, timeout)
        yield RedisServer(port, proc, tmp)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        tmp.cleanup()


# --------------------------------------------------------------------- running


def loadgen_argv(opts: Options) -> list[str]:
    argv = [sys.executable, "-m", "bench.loadgen", "--json"]
    for name in ("host", "port", "mode", "prefix", "loop", *OVERRIDABLE, "settle"):
        argv += ["--" + name.replace("_", "-"), str(getattr(opts, name))]
    if opts.server_pid is not None:
        argv += ["--server-pid", str(opts.server_pid)]
    return argv


def scenario_options(name: str, overrides: dict[str, Any], port: int, pid: int | None) -> Options:
    opts = Options(host=HOST, port=port, server_pid=pid)
    for key, value in {**SCENARIOS[name], **overrides}.items():
        setattr(opts, key, value)
    opts.prefix = f"b{os.getpid() % 1000}x"
    return opts


def run_loadgen(opts: Options, nice: int) -> tuple[dict[str, Any], list[str]]:
    argv = pinned(GENERATOR_CORE, nice, loadgen_argv(opts))
    try:
        done = subprocess.run(
            argv,
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=opts.deadline_seconds() + 30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": "load generator timed out"}, argv
    out = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(out[-1]) if out else {}
    except json.JSONDecodeError:
        result = {}
    if done.returncode != 0 or not result:
        err = done.stderr.decode(errors="replace")[-2000:]
        result.setdefault("error", f"exit {done.returncode}: {err}")
    return result, argv


def run_one(
    scenario: str, target: Target, overrides: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    opts = scenario_options(scenario, overrides, target.port, target.pid)
    if target.kind == "inspircd" and opts.mode != "connect" and "concurrency" not in overrides:
        # InspIRCd 3 completes registrations on its once-a-second timer: keep many in flight.
        opts.concurrency = max(opts.concurrency, 1000)
    waited, busy = 0.0, None
    if args.quiet_threshold > 0:
        waited, busy = wait_quiet(args.quiet_threshold, args.quiet_wait)
    redis_cpu0 = proc_cpu_seconds(target.redis_pid)
    result, argv = run_loadgen(opts, args.nice)
    redis_cpu1 = proc_cpu_seconds(target.redis_pid)
    if redis_cpu0 is not None and redis_cpu1 is not None:
        # Over the generator's whole run (setup and drain included), so an upper
        # bound; traffic flows for about warmup + duration of it.
        result["redis_cpu_s"] = round(redis_cpu1 - redis_cpu0, 3)
        if opts.mode == "traffic":
            result["redis_cpu_pct_est"] = round(
                100 * (redis_cpu1 - redis_cpu0) / (opts.warmup + opts.duration), 1
            )
    result["quiet_wait_s"] = round(waited, 1)
    result["busy_pct_before"] = None if busy is None else round(busy, 1)
    result["scenario"] = scenario
    result["target"] = target.label
    result["server_command"] = shlex.join(target.command) if target.command else None
    result["loadgen_command"] = shlex.join(argv)
    result["machine"] = machine_info()
    result["revision"] = revision()
    result["history"] = args.history if target.kind == "ours" else None
    result["nice"] = args.nice
    return result


def run_histlat(
    target: Target,
    redis: RedisServer | None,
    modes: str,
    args: argparse.Namespace,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """bench.histlat against ``target``, pinned to the generator's core."""
    argv = [sys.executable, "-m", "bench.histlat", "--json", "--port", str(target.port)]
    argv += ["--modes", modes, "--tag", str(os.getpid() % 1000)]
    argv += [f"--{k}={v}" for k, v in HISTLAT.items()]
    if redis is not None:
        argv += ["--redis-port", str(redis.port)]
    if target.pid is not None:
        argv += ["--server-pid", str(target.pid)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    argv = pinned(GENERATOR_CORE, args.nice, argv)
    requests = HISTLAT["requests"] * len(modes.split(","))
    busy0 = machine_busy_seconds()
    cpu0 = proc_cpu_seconds(target.pid)
    t0 = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60 + requests,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"mode": "chathistory", "error": "bench.histlat timed out"}
    elapsed = time.monotonic() - t0
    out = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(out[-1]) if out else {}
    except json.JSONDecodeError:
        result = {}
    if done.returncode != 0 or not result:
        err = done.stderr.decode(errors="replace")[-2000:]
        result.setdefault("error", f"exit {done.returncode}: {err}")
    busy1, cpu1 = machine_busy_seconds(), proc_cpu_seconds(target.pid)
    if None not in (busy0, busy1, cpu0, cpu1) and elapsed > 0:
        # Everything but our server over the whole histlat run (the client included).
        assert busy0 is not None and busy1 is not None and cpu0 is not None and cpu1 is not None
        result["non_server_cpu_pct"] = round(100 * ((busy1 - busy0) - (cpu1 - cpu0)) / elapsed, 1)
    result["mode"] = "chathistory"
    result["histlat_command"] = shlex.join(argv)
    return result


def run_history(
    backend: str, args: argparse.Namespace, overrides: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The history scenario on our server with ``backend``, one repeat.

    Fan-out under HISTORY_CONFIGS (each on a fresh server and, for Redis, a fresh
    redis-server), then CHATHISTORY LATEST latency: warm and cold cache on a
    SQLite + Redis server, and the store alone on a server without Redis.
    """
    label = f"ours/{backend}"

    def annotate(result: dict[str, Any], config: str, target: Target | None) -> dict[str, Any]:
        result["scenario"] = "history"
        result["target"] = label
        result["history"] = config
        if config == "sqlite+redis":
            result["redis_core"] = args.redis_core
        if target is not None and "error" in result:
            result["server_log"] = target.log_tail()
        return result

    def fanout(config: str) -> dict[str, Any]:
        print(f"# history on {label}: fanout, history {config} ...", file=sys.stderr, flush=True)
        with contextlib.ExitStack() as stack:
            redis = (
                stack.enter_context(redis_server(args.nice, args.start_timeout, args.redis_core))
                if config == "sqlite+redis"
                else None
            )
            target = stack.enter_context(
                server(
                    "ours",
                    backend,
                    args.nice,
                    args.server_arg,
                    args.start_timeout,
                    config != "off",
                    redis.url if redis else None,
                )
            )
            if redis is not None:
                target.redis_pid = redis.proc.pid
            return annotate(run_one("history", target, overrides, args), config, target)

    def latency(config: str, modes: str) -> dict[str, Any]:
        print(f"# history on {label}: CHATHISTORY {modes} ...", file=sys.stderr, flush=True)
        # The server's cache counters show whether "warm" requests really hit Redis.
        metrics_port = free_port() if "--metrics-port" in ours_help() else None
        extra = [*args.server_arg, "--metrics-port", str(metrics_port)] if metrics_port else []
        with contextlib.ExitStack() as stack:
            redis = (
                stack.enter_context(redis_server(args.nice, args.start_timeout, args.redis_core))
                if config == "sqlite+redis"
                else None
            )
            target = stack.enter_context(
                server(
                    "ours",
                    backend,
                    args.nice,
                    extra or args.server_arg,
                    args.start_timeout,
                    True,
                    redis.url if redis else None,
                )
            )
            if args.quiet_threshold > 0:
                wait_quiet(args.quiet_threshold, args.quiet_wait)
            result = run_histlat(target, redis, modes, args, metrics_port)
            result["server_command"] = shlex.join(target.command)
            result["machine"] = machine_info()
            result["revision"] = revision()
            result["nice"] = args.nice
            return annotate(result, config, target)

    for config in HISTORY_CONFIGS:
        try:
            yield fanout(config)
        except RuntimeError as e:
            yield annotate({"mode": "traffic", "error": str(e)}, config, None)
    for config, modes in (("sqlite+redis", "warm,cold"), ("sqlite", "store")):
        try:
            yield latency(config, modes)
        except RuntimeError as e:
            yield annotate({"mode": "chathistory", "error": str(e)}, config, None)


# --------------------------------------------------------------------- reporting


def _fmt(value: Any, scale: float = 1.0, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        v = value / scale
        return f"{v:,.{digits}f}"
    return str(value)


def summary_row(r: dict[str, Any]) -> str:
    label = f"{r.get('scenario')} | {r.get('target')}"
    if r.get("scenario") == "history":
        label += f" history={r.get('history')}"
    if "error" in r:
        return f"| {label} | error: {str(r['error']).splitlines()[0][:120]} |"
    mode = r.get("mode")
    if mode == "traffic":
        lat = r.get("latency", {})
        return (
            f"| {label} | {_fmt(r['deliveries_per_s'])} | "
            f"{_fmt(r['deliveries_per_server_cpu_s'])} | {_fmt(r['sent_per_s'])} | "
            f"{r['lost']} | {lat.get('p50_ms')} | {lat.get('p99_ms')} | "
            f"{_fmt(r['server_cpu_pct'], digits=1)} | {_fmt(r['generator_cpu_pct'], digits=1)} | "
            f"{_fmt(r.get('others_cpu_pct'), digits=1)} |"
        )
    if mode == "idle":
        rss = r.get("server_rss_kb", {})
        return (
            f"| {label} | {r['clients']} conns | {_fmt(r['rss_kb_per_conn'], digits=2)} KiB/conn | "
            f"RSS {rss.get('primed')} -> {rss.get('held')} KiB | "
            f"{_fmt(r['registrations_per_s'])} reg/s | idle CPU {r['server_cpu_pct_idle']}% |"
        )
    if mode == "chathistory":
        parts = []
        for m in ("warm", "cold", "store"):
            if m in r:
                lat = r[m]["latency"]
                parts.append(
                    f"{m}: p50 {lat['p50_ms']} p90 {lat['p90_ms']} p99 {lat['p99_ms']} ms, "
                    f"{r[m].get('server_cpu_ms_per_request')} CPU-ms/req"
                )
        return f"| {label} | LATEST * {r.get('limit')} | " + " | ".join(parts) + " |"
    if mode == "connect":
        lat = r.get("register_latency", {})
        return (
            f"| {label} | {_fmt(r['registrations_per_s'])} reg/s | "
            f"{_fmt(r['registrations_per_server_cpu_s'])} reg/CPU-s | "
            f"CPU {r['server_cpu_pct']}% | p50 {lat.get('p50_ms')} ms p99 {lat.get('p99_ms')} ms |"
        )
    return f"| {label} | {json.dumps(r)[:200]} |"


TRAFFIC_HEADER = (
    "| scenario | target | deliveries/s | deliveries/server CPU-s | msgs sent/s | lost | "
    "p50 ms | p99 ms | server CPU % | generator CPU % | others CPU % |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def print_summary(results: list[dict[str, Any]]) -> None:
    traffic = [r for r in results if r.get("mode") == "traffic"]
    rest = [r for r in results if r.get("mode") != "traffic"]
    if traffic:
        print(TRAFFIC_HEADER)
        for r in traffic:
            print(summary_row(r))
    for r in rest:
        print(summary_row(r))


# --------------------------------------------------------------------- CLI


def split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Run benchmark scenarios against our server and/or peers.",
    )
    p.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    p.add_argument(
        "--server",
        default="ours",
        help="comma list of servers to start: ours, ngircd, inspircd (default: ours)",
    )
    p.add_argument(
        "--backend",
        default="uvloop",
        help="comma list of our backends: uvloop, asyncio, select (default: uvloop)",
    )
    p.add_argument("--port", type=int, help="target a server already listening on this port")
    p.add_argument("--server-pid", type=int, help="PID of that server (CPU and RSS figures)")
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra argument for our server (repeatable), e.g. --server-arg=--sendq=4194304",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="nice value for server and generator (root: < 0)",
    )
    p.add_argument(
        "--rt",
        action="store_true",
        help="run server and generator SCHED_FIFO (root; others keep 5%% of each core)",
    )
    p.add_argument(
        "--history",
        choices=("on", "off"),
        default="on",
        help="our server's SQLite history (default on, in a temp dir; off: --db '')",
    )
    p.add_argument(
        "--redis-core",
        default=SERVER_CORE,
        help=f"core the history scenario's redis-server is pinned to (default {SERVER_CORE}, "
        "the server's)",
    )
    p.add_argument("--start-timeout", type=float, default=20.0)
    p.add_argument("--repeat", type=int, default=1, help="runs per scenario and server")
    p.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.0,
        help="before each run wait until the machine is below this busy %% (0 = don't wait)",
    )
    p.add_argument("--quiet-wait", type=float, default=60.0, help="max seconds to wait so")
    p.add_argument("--out", help="append one JSON object per run to this file")
    for name in OVERRIDABLE:
        kind = float if name in ("rate", "duration", "warmup", "setup_timeout", "drain") else int
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    return p


def targets_from(args: argparse.Namespace) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for kind in split_list(args.server):
        if kind == "ours":
            for backend in split_list(args.backend):
                if backend not in BACKENDS:
                    raise SystemExit(f"unknown backend {backend!r}; choose from {BACKENDS}")
                pairs.append(("ours", backend))
        elif kind in PEERS:
            if not shutil.which(kind) and not Path(f"/usr/sbin/{kind}").exists():
                raise SystemExit(f"{kind} is not installed (apt-get install {kind})")
            pairs.append((kind, ""))
        else:
            raise SystemExit(f"unknown server {kind!r}; choose ours, ngircd or inspircd")
    return pairs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rt:
        args.nice = RT
    overrides = {k: getattr(args, k) for k in OVERRIDABLE if getattr(args, k) is not None}
    raise_nofile(max(SCENARIOS["idle"]["clients"], overrides.get("clients", 0)) * 2 + 1000)
    results: list[dict[str, Any]] = []
    out = open(args.out, "a", encoding="utf-8") if args.out else None  # noqa: SIM115
    try:
        if args.port is not None:
            external = Target("external", port=args.port, pid=args.server_pid)
            for scenario in args.scenarios:
                for _ in range(args.repeat):
                    results.append(run_one(scenario, external, overrides, args))
                    _emit(results[-1], out)
        else:
            for scenario in args.scenarios:
                if scenario == "history":
                    for _ in range(args.repeat):
                        for kind, backend in targets_from(args):
                            if kind != "ours":
                                print(f"# history: skipping {kind} (ours only)", file=sys.stderr)
                                continue
                            for result in run_history(backend, args, overrides):
                                results.append(result)
                                _emit(result, out)
                    continue
                for kind, backend in targets_from(args) * args.repeat:
                    label = f"{kind}/{backend}" if backend else kind
                    print(f"# {scenario} on {label} ...", file=sys.stderr, flush=True)
                    try:
                        with server(
                            kind,
                            backend,
                            args.nice,
                            args.server_arg,
                            args.start_timeout,
                            args.history == "on",
                        ) as target:
                            result = run_one(scenario, target, overrides, args)
                            if "error" in result:
                                result["server_log"] = target.log_tail()
                    except RuntimeError as e:
                        result = {"scenario": scenario, "target": label, "error": str(e)}
                    results.append(result)
                    _emit(result, out)
    finally:
        if out is not None:
            out.close()
    print_summary(results)
    return 1 if any("error" in r for r in results) else 0


def _emit(result: dict[str, Any], out: Any) -> None:
    if out is not None:
        out.write(json.dumps(result) + "\n")
        out.flush()
    if "error" in result:
        print(f"# error: {result['error']}", file=sys.stderr)
        if result.get("server_log"):
            print(result["server_log"], file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
