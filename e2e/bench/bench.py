#!/usr/bin/env python3
"""Side-by-side benchmark: npm-registry-server vs Verdaccio vs nginx (static files, the ceiling).

Run it through run.sh, which installs the peers and builds the server first. This script only
uses what it is given: it seeds one storage folder (seed.py), gives each registry its own copy,
pre-renders for nginx the bytes our server answers, drives every server with the same wrk load on
loopback, and prints one table (and writes results/latest.json). It never asserts timings.
"""

import argparse
import base64
import datetime
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import seed as seedlib

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "bench.lua")
ABBREVIATED = "application/vnd.npm.install-v1+json"
# What npm 10/11 send for metadata (abbreviated preferred).
NPM_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
# What a browser sends for a page.
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# Publish targets (seed.py writes them): (name prefix, how many, digits of the number).
SPREAD = ("bench-spread-", seedlib.SPREAD_PACKAGES, 3)
HOT = ("bench-pub-", 16, 2)

STARTED = []  # Popen objects this script started; stopped on exit, whatever happens


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

def start(cmd, logfile, cwd=None, env=None):
    f = open(logfile, "ab")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=cwd, env=env, start_new_session=True)
    p._logfile = f
    STARTED.append(p)
    return p


def stop(p, timeout=10):
    """SIGTERM to the process group this script created for `p` (nginx's workers are in it),
    then SIGKILL if it does not exit in time."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)
    if p._logfile:
        p._logfile.close()
    if p in STARTED:
        STARTED.remove(p)


def stop_all(*_):
    for p in list(STARTED):
        try:
            stop(p, timeout=5)
        except Exception:
            pass


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def tree_pids(pid):
    """pid and its descendants (nginx: master + workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kb(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class RssSampler:
    """Samples the RSS of a process tree every 100 ms in the background; keeps the peak."""

    def __init__(self, pid):
        self.pid, self.peak, self.samples = pid, 0, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            self.samples += 1
            self._stop.wait(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kb(self.pid))


# ---------------------------------------------------------------- HTTP helpers

def http(method, url, body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def login(base):
    body = json.dumps({"name": "bench", "password": "bench-pass", "type": "user", "roles": []}).encode()
    status, _, data = http("PUT", f"{base}/-/user/org.couchdb.user:bench", body,
                           {"content-type": "application/json"})
    if status >= 300:
        raise RuntimeError(f"login on {base} answered {status}: {data[:300]!r}")
    return json.loads(data)["token"]


# ---------------------------------------------------------------- servers

def registry_config(storage, port, verdaccio):
    lines = [
        f"storage: {storage}",
        f"listen: 127.0.0.1:{port}",
        "max_body_size: 50mb",
        "packages:",
        "  '**':",
        "    access: $all",
        "    publish: $authenticated",
        "    unpublish: $authenticated",
        "log: {type: stdout, format: json, level: warn}",
    ]
    if verdaccio:
        lines += [
            "auth:",
            "  htpasswd:",
            "    file: ./htpasswd",
            "    max_users: 1000",
            "middlewares:",
            "  audit:",
            "    enabled: false",
            # JWT API tokens: with Verdaccio's default (legacy) tokens every authenticated request
            # re-checks the bcrypt password, which makes its publish several times slower still.
            "security:",
            "  api:",
            "    jwt:",
            "      sign:",
            "        expiresIn: 7d",
            # Its UI's data API answers 429 after 5000 requests in 2 minutes from one address.
            "web:",
            "  rateLimit:",
            "    windowMs: 1000",
            "    max: 1000000000",
        ]
    return "\n".join(lines) + "\n"


class Server:
    def __init__(self, kind, port, proc, workdir, logfile):
        self.kind, self.port, self.proc, self.workdir, self.logfile = kind, port, proc, workdir, logfile
        self.base = f"http://127.0.0.1:{port}"
        self.token = None
        self.etag = None


def start_ours(binary, seed_dir, work):
    d = os.path.join(work, "ours")
    os.makedirs(d)
    shutil.copytree(seed_dir, os.path.join(d, "storage"), symlinks=True)
    port = free_port()
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(registry_config("./storage", port, verdaccio=False))
    logfile = os.path.join(d, "server.log")
    p = start([binary, "--config", cfg], logfile, cwd=d)
    s = Server("ours", port, p, d, logfile)
    wait_ready(f"{s.base}/-/ping", p)
    return s


def start_verdaccio(verdaccio_dir, seed_dir, work):
    d = os.path.join(work, "verdaccio")
    os.makedirs(d)
    shutil.copytree(seed_dir, os.path.join(d, "storage"), symlinks=True)
    port = free_port()
    cfg = os.path.join(d, "config.yaml")
    with open(cfg, "w") as f:
        f.write(registry_config("./storage", port, verdaccio=True))
    logfile = os.path.join(d, "server.log")
    entry = os.path.join(verdaccio_dir, "bin", "verdaccio")
    env = dict(os.environ, NODE_ENV="production")
    p = start(["node", entry, "--config", cfg, "--listen", f"127.0.0.1:{port}"], logfile, cwd=d, env=env)
    s = Server("verdaccio", port, p, d, logfile)
    wait_ready(f"{s.base}/-/ping", p, timeout=120)
    return s


NGINX_CONF = """\
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    etag on;
    gzip_static on;   # serves <file>.gz, pre-compressed, when the client accepts gzip
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{ application/json json; application/octet-stream tgz; }}
    default_type application/octet-stream;
    # The abbreviated document for npm's Accept header, as a registry does.
    map $http_accept $variant {{
        default full;
        "~application/vnd\\.npm\\.install-v1\\+json" abbreviated;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {d}/static;
        location ~ ^/[^/]+/-/[^/]+\\.tgz$ {{
            root {d}/static/tarballs;
        }}
        location / {{
            try_files /$variant$uri.json =404;
        }}
    }}
}}
"""


def render_static(ours, seed_dir, names, static):
    """What our server answers, as files: full and abbreviated packuments, and every tarball."""
    for variant in ("full", "abbreviated"):
        os.makedirs(os.path.join(static, variant), exist_ok=True)
    for name in names:
        for variant, accept in (("full", "application/json"), ("abbreviated", ABBREVIATED)):
            status, _, body = http("GET", f"{ours.base}/{name}", headers={"Accept": accept})
            if status != 200:
                raise RuntimeError(f"our server answered {status} for {name} ({variant})")
            path = os.path.join(static, variant, f"{name}.json")
            with open(path, "wb") as f:
                f.write(body)
            with open(path + ".gz", "wb") as f:
                f.write(gzip.compress(body, compresslevel=6, mtime=0))
        tdir = os.path.join(static, "tarballs", name, "-")
        os.makedirs(tdir, exist_ok=True)
        for fname in os.listdir(os.path.join(seed_dir, name)):
            if fname.endswith(".tgz"):
                shutil.copyfile(os.path.join(seed_dir, name, fname), os.path.join(tdir, fname))


def start_nginx(nginx, work):
    d = os.path.join(work, "nginx")
    for sub in ("tmp",):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(d=d, port=port))
    # nginx's workers run as an unprivileged user: they must be able to read the tree.
    for root, dirs, files in os.walk(work):
        os.chmod(root, 0o755)
    logfile = os.path.join(d, "server.log")
    p = start([nginx, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf, "-g", "daemon off;"],
              logfile, cwd=d)
    s = Server("nginx", port, p, d, logfile)
    wait_ready(f"{s.base}/bench-small", p, timeout=20)
    return s


# ---------------------------------------------------------------- scenarios

def scenarios(tarball_file):
    """Each: key, title, path, Accept, Accept-Encoding, expected status, mode (bench.lua)."""
    return [
        dict(key="packument_full_large", title="full packument, 300 versions",
             path="/bench-large", accept="application/json", expect=200, mode="get"),
        dict(key="packument_full_large_gzip", title="full packument, 300 versions, gzip",
             path="/bench-large", accept="application/json", encoding="gzip, deflate", expect=200,
             mode="get"),
        dict(key="packument_full_small", title="full packument, small",
             path="/bench-small", accept="application/json", expect=200, mode="get"),
        dict(key="packument_abbreviated_large", title="abbreviated packument, 300 versions",
             path="/bench-large", accept=NPM_ACCEPT, expect=200, mode="get"),
        dict(key="tarball_600k", title="tarball ~600 KB",
             path=f"/bench-tarball/-/{tarball_file}", accept=None, expect=200, mode="get"),
        dict(key="revalidate_304", title="304 revalidation (If-None-Match)",
             path="/bench-large", accept=NPM_ACCEPT, expect=304, mode="revalidate"),
        # The web UI. Ours renders each page on the server; Verdaccio's page is a script that
        # fetches its data, so for it the same scenario asks for what the server renders: the
        # package's README as sanitized HTML (its sidebar data is a second request, not measured).
        dict(key="ui_package_large", title="UI package page, 300 versions",
             path="/-/ui/package/bench-large", accept=HTML, expect=200, mode="get",
             servers=("ours", "verdaccio"),
             paths={"verdaccio": "/-/verdaccio/data/package/readme/bench-large"}),
        dict(key="ui_package_small", title="UI package page, small",
             path="/-/ui/package/bench-small", accept=HTML, expect=200, mode="get",
             servers=("ours", "verdaccio"),
             paths={"verdaccio": "/-/verdaccio/data/package/readme/bench-small"}),
        dict(key="ui_home", title="UI home page (20 of all packages)",
             path="/", accept=HTML, expect=200, mode="get", servers=("ours", "verdaccio"),
             paths={"verdaccio": "/-/verdaccio/data/packages"}),
        # publish_hot first: on an ext4 without a journal, the inodes the other scenario frees
        # would slow down the file creation of the next one (see README.md, fairness notes).
        dict(key="publish_hot", title="publish (to 16 growing packages)",
             path="/", accept=None, expect=201, mode="publish", packages=HOT),
        dict(key="publish", title="publish (to 512 packages of 30+ versions)",
             path="/", accept=None, expect=201, mode="publish", packages=SPREAD),
    ]


def path_of(server, sc):
    """The scenario's path on this server (the UI's differ)."""
    return sc.get("paths", {}).get(server.kind, sc["path"])


def run_wrk(server, sc, duration, threads, connections, run_id, pub):
    env = dict(os.environ, BENCH_MODE=sc["mode"], BENCH_ACCEPT=sc["accept"] or "",
               BENCH_ENCODING=sc.get("encoding") or "")
    if sc["mode"] == "revalidate":
        env["BENCH_INM"] = server.etag
    if sc["mode"] == "publish":
        prefix, count, digits = sc["packages"]
        env.update(BENCH_TOKEN=server.token, BENCH_PUB_PREFIX=prefix,
                   BENCH_PUB_PACKAGES=str(count), BENCH_PUB_DIGITS=str(digits),
                   BENCH_PUB_THREADS=str(threads), BENCH_PUB_RUN=str(run_id),
                   BENCH_PUB_PORT=str(server.port), **pub)
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", "10s", "--latency", "-s", LUA, server.base + path_of(server, sc)]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    p._logfile = None
    STARTED.append(p)
    try:
        stdout, _ = p.communicate(timeout=duration + 60)
    finally:
        stop(p)
    line = next((l for l in stdout.splitlines() if l.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {p.returncode}): {stdout[:300]}")
    return json.loads(line[len("BENCHJSON "):])


def probe(server, sc):
    """One request with curl's view of it: status, size, ETag. Checks the server answers what
    the scenario expects before loading it."""
    headers = {}
    if sc["accept"]:
        headers["Accept"] = sc["accept"]
    if sc.get("encoding"):
        headers["Accept-Encoding"] = sc["encoding"]
    if sc["mode"] == "revalidate":
        headers["If-None-Match"] = server.etag or ""
    status, hdrs, body = http("GET", server.base + path_of(server, sc), headers=headers)
    return status, len(body), {k.lower(): v for k, v in hdrs.items()}


def count_published_versions(server, packages):
    """Versions of a publish scenario's packages, as stored: read from the server's storage
    folder (both keep Verdaccio's layout), so that counting neither loads the server nor fills
    its caches before the measured run."""
    prefix, count, digits = packages
    n = 0
    for i in range(count):
        path = os.path.join(server.workdir, "storage", f"{prefix}{i:0{digits}d}", "package.json")
        try:
            with open(path, "rb") as f:
                n += len(json.load(f).get("versions", {}))
        except FileNotFoundError:
            pass
    return n


def measure(server, sc, args, run_counter, pub):
    note = []
    if sc["mode"] == "revalidate":
        st, _, h = probe(server, dict(sc, mode="get"))
        server.etag = h.get("etag")
        if not server.etag:
            note.append("no ETag on the 200 answer")
            server.etag = '"none"'
    status, size, hdrs = probe(server, sc) if sc["mode"] != "publish" else (None, 0, {})
    if status is not None and status != sc["expect"]:
        note.append(f"probe answered {status}, expected {sc['expect']}")
    if sc.get("encoding") and status == 200 and not hdrs.get("content-encoding"):
        note.append("not compressed")
    published = 0
    if sc["mode"] == "publish":
        before = count_published_versions(server, sc["packages"])
    if args.warmup > 0:
        run_counter[0] += 1
        w = run_wrk(server, sc, args.warmup, args.threads, args.connections, run_counter[0], pub)
        published += sum(v for k, v in w["statuses"].items() if 200 <= int(k) < 300)
    run_counter[0] += 1
    cpu0 = cpu_seconds(server.proc.pid)
    with RssSampler(server.proc.pid) as rss:
        res = run_wrk(server, sc, args.duration, args.threads, args.connections, run_counter[0], pub)
    cpu = cpu_seconds(server.proc.pid) - cpu0
    secs = res["duration_us"] / 1e6
    statuses = {int(k): v for k, v in res["statuses"].items()}
    if sc["mode"] == "get":
        ok = res["requests"] - res["errors"]["status"]
    else:
        ok = sum(v for k, v in statuses.items() if k == sc["expect"] or (sc["mode"] == "publish" and 200 <= k < 300))
    bad = res["requests"] - ok
    sock = sum(v for k, v in res["errors"].items() if k != "status")
    if bad:
        note.append(f"{bad} unexpected answers" + (f" {dict(sorted(statuses.items()))}" if statuses else
                                                    f" ({res['errors']['status']} with status >= 400)"))
    if sc["mode"] == "publish":
        published += ok
        after = count_published_versions(server, sc["packages"])
        # wrk stops waiting at the deadline: up to one request per connection per wrk run is
        # still completed by the server unseen. Fewer versions than 2xx answers is a lost write.
        added = after - before
        if added < published or added > published + 2 * args.connections:
            note.append(f"{published} publishes answered 2xx but {added} versions were added")
    if sock:
        note.append(f"socket errors {dict((k, v) for k, v in res['errors'].items() if k != 'status' and v)}")
    return {
        "requests": res["requests"],
        "ok": ok,
        "non_ok": bad,
        "socket_errors": sock,
        "statuses": statuses,
        "seconds": round(secs, 2),
        "rps": round(ok / secs, 1) if secs else 0,
        "p50_ms": res["latency_us"]["p50"] / 1000,
        "p90_ms": res["latency_us"]["p90"] / 1000,
        "p99_ms": res["latency_us"]["p99"] / 1000,
        "max_ms": res["latency_us"]["max"] / 1000,
        "mb_per_s": round(res["bytes"] / secs / 1e6, 1) if secs else 0,
        "peak_rss_mb": round(rss.peak / 1024, 1),
        "rss_samples": rss.samples,
        "cpu_seconds": round(cpu, 2),
        "cpu_us_per_request": round(cpu * 1e6 / ok) if ok else None,
        "response_bytes": size,
        "status_probe": status,
        "content_encoding": hdrs.get("content-encoding"),
        "notes": note,
    }


# ---------------------------------------------------------------- report

def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_us(us):
    if us is None:
        return "-"
    return f"{us / 1000:.1f} ms" if us >= 10000 else f"{us:,.0f} us"


def fmt_ratio(a, b):
    if not a or not b:
        return "-"
    r = a / b
    if r >= 100:
        return f"{r:.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.3f}x"


def table(results, scs, servers):
    rows = []
    hdr = (f"{'scenario':<37} {'server':<15} {'req/s':>9} {'p50':>9} {'p99':>9} {'peak RSS':>9} "
           f"{'CPU/req':>9} {'size':>7}  notes")
    rows.append(hdr)
    rows.append("-" * len(hdr))
    for sc in scs:
        r = results[sc["key"]]
        first = True
        for kind in servers:
            if kind not in r:
                continue
            m = r[kind]
            title = sc["title"] if first else ""
            first = False
            size = f"{m['response_bytes'] / 1024:.0f} KB" if m["response_bytes"] else ""
            rows.append(f"{title:<37} {kind:<15} {m['rps']:>9,.0f} {fmt_ms(m['p50_ms']):>9} "
                        f"{fmt_ms(m['p99_ms']):>9} {m['peak_rss_mb']:>6.0f} MB {fmt_us(m['cpu_us_per_request']):>9} "
                        f"{size:>7}  "
                        f"{'; '.join(m['notes'])}")
        ours = r.get("ours")
        for other in ("verdaccio", "nginx"):
            if ours and other in r:
                o = r[other]
                rows.append(f"{'':<37} {'ours/' + other:<15} {fmt_ratio(ours['rps'], o['rps']):>9} "
                            f"{fmt_ratio(ours['p50_ms'], o['p50_ms']):>9} "
                            f"{fmt_ratio(ours['p99_ms'], o['p99_ms']):>9} "
                            f"{fmt_ratio(ours['peak_rss_mb'], o['peak_rss_mb']):>9} "
                            f"{fmt_ratio(ours['cpu_us_per_request'], o['cpu_us_per_request']):>9}")
    rows.append("ratios are ours / other: above 1 is better for req/s, below 1 is better for the rest; "
                "RSS and CPU are the server's process tree's (nginx: master + workers); CPU/req is "
                "the server's CPU time (user + system) per answered request")
    return "\n".join(rows)


BENIGN = ("recommends node.js", "superuser privileges", "--trace-warnings", "http address")


def log_problems(logfile):
    """Lines at warn/error level (or a panic) in a server's log, minus known start-up chatter."""
    out = []
    try:
        with open(logfile, errors="replace") as f:
            for line in f:
                l = line.lower()
                if any(b in l for b in BENIGN):
                    continue
                if any(w in l for w in ('"level":40', '"level":50', '"level":60', "warn", "error",
                                        "panic", "[emerg]", "[alert]", "[crit]")):
                    out.append(line.rstrip()[:400])
    except OSError:
        pass
    return out


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server-bin", required=True, help="npm-registry-server binary")
    ap.add_argument("--verdaccio", help="Verdaccio's package folder (node_modules/verdaccio)")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 s per scenario, 40 packages")
    ap.add_argument("--duration", type=int, help="seconds per scenario (default 10, quick 3)")
    ap.add_argument("--warmup", type=int, help="unmeasured seconds before each (default 2, quick 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--packages", type=int, help="packages seeded (default 200, quick 40)")
    ap.add_argument("--servers", default="ours,verdaccio,nginx", help="comma-separated subset")
    ap.add_argument("--scenarios", help="comma-separated subset of scenario keys")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work folder (storage, logs)")
    ap.add_argument("--work-dir", help="where the work folder (every server's storage) is created "
                    "(default: the system's temp folder)")
    args = ap.parse_args()
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.packages = args.packages or (40 if args.quick else 200)
    large = 3 if args.quick else 10
    servers = [s for s in args.servers.split(",") if s]
    if "verdaccio" in servers and not args.verdaccio:
        ap.error("--verdaccio is required to run Verdaccio")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    work = tempfile.mkdtemp(prefix="npm-registry-bench-", dir=args.work_dir)
    # Server logs go beside the JSON: results/latest.json -> results/latest-logs/<server>-*.log.
    logs_dir = os.path.splitext(os.path.abspath(args.out))[0] + "-logs"
    os.makedirs(logs_dir, exist_ok=True)
    for f in os.listdir(logs_dir):
        if f.endswith(".log") and f.split("-")[0] in ("ours", "nginx", "verdaccio"):
            os.remove(os.path.join(logs_dir, f))
    t_start = time.time()
    load_before = os.getloadavg()[0]
    try:
        seed_dir = os.path.join(work, "seed")
        names = seedlib.generate(seed_dir, args.packages, large, log=log)
        tar_bytes = seedlib.publish_tarball()
        pub = dict(BENCH_PUB_B64=base64.b64encode(tar_bytes).decode(),
                   BENCH_PUB_SHA1=hashlib.sha1(tar_bytes).hexdigest(),
                   BENCH_PUB_SRI="sha512-" + base64.b64encode(hashlib.sha512(tar_bytes).digest()).decode(),
                   BENCH_PUB_LENGTH=str(len(tar_bytes)))
        tarball_file = next(f for f in os.listdir(os.path.join(seed_dir, "bench-tarball")) if f.endswith(".tgz"))
        scs = scenarios(tarball_file)
        if args.scenarios:
            keep = set(args.scenarios.split(","))
            scs = [s for s in scs if s["key"] in keep]
        results = {sc["key"]: {} for sc in scs}
        info = {}
        problems = {}
        run_counter = [10]

        # Our server first: nginx serves what it answers.
        order = [s for s in ("ours", "nginx", "verdaccio") if s in servers]
        for kind in order:
            log(f"starting {kind}")
            if kind == "ours":
                srv = start_ours(args.server_bin, seed_dir, work)
            elif kind == "verdaccio":
                srv = start_verdaccio(args.verdaccio, seed_dir, work)
            else:
                static = os.path.join(work, "nginx", "static")
                if not os.path.isdir(static):
                    # A separate instance, so the measured one starts as cold as the others.
                    log("rendering nginx's static files from our server's answers")
                    o = start_ours(args.server_bin, seed_dir, os.path.join(work, "render"))
                    try:
                        render_static(o, seed_dir, names, static)
                    finally:
                        stop(o.proc)
                srv = start_nginx(args.nginx, work)
            try:
                time.sleep(1.0)
                idle = rss_kb(srv.proc.pid)
                info[kind] = {"idle_rss_mb": round(idle / 1024, 1), "port": srv.port}
                if kind != "nginx" and any(sc["mode"] == "publish" for sc in scs):
                    srv.token = login(srv.base)
                for sc in scs:
                    if kind == "nginx" and sc["mode"] == "publish" or kind not in sc.get("servers", (kind,)):
                        continue
                    log(f"{kind}: {sc['key']} ({args.duration:g} s)")
                    try:
                        m = measure(srv, sc, args, run_counter, pub)
                    except Exception as e:  # one broken scenario must not lose the others
                        log(f"{kind}: {sc['key']} failed: {e}")
                        continue
                    if srv.proc.poll() is not None:
                        m["notes"].append(f"the server exited ({srv.proc.returncode})")
                    results[sc["key"]][kind] = m
                    log(f"  {m['rps']:,.0f} req/s, p50 {fmt_ms(m['p50_ms'])}, p99 {fmt_ms(m['p99_ms'])}, "
                        f"peak RSS {m['peak_rss_mb']:.0f} MB {'; '.join(m['notes'])}")
                    if srv.proc.poll() is not None:
                        log(f"{kind} exited with {srv.proc.returncode}; skipping its other scenarios")
                        break
                info[kind]["exited_early"] = srv.proc.poll()
            finally:
                stop(srv.proc)
                logs = [srv.logfile] + ([os.path.join(srv.workdir, "error.log")] if kind == "nginx" else [])
                problems[kind] = [l for f in logs for l in log_problems(f)]
                for f in logs:
                    if os.path.exists(f):
                        shutil.copyfile(f, os.path.join(logs_dir, f"{kind}-{os.path.basename(f)}"))

        text = table(results, scs, order)
        idle_line = "idle RSS: " + ", ".join(f"{k} {v['idle_rss_mb']:.0f} MB" for k, v in info.items())
        settings = (f"wrk -t{args.threads} -c{args.connections}, {args.duration:g} s per scenario after "
                    f"{args.warmup:g} s warm-up, {args.packages} packages seeded, loopback, {os.cpu_count()} CPUs, "
                    f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
        print()
        print(settings)
        print(text)
        print(idle_line)
        for kind, lines in problems.items():
            if lines:
                print(f"{kind}: {len(lines)} warning/error lines in its log ({logs_dir}), first: {lines[0][:300]}")
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "load_average": {"before": load_before, "after": os.getloadavg()[0]},
                "settings": {"threads": args.threads, "connections": args.connections,
                             "duration_s": args.duration, "warmup_s": args.warmup,
                             "packages": args.packages, "cpus": os.cpu_count(), "quick": args.quick},
                "servers": info,
                "scenarios": [{k: sc[k] for k in ("key", "title", "path", "accept", "expect")}
                              | {"encoding": sc.get("encoding"), "paths": sc.get("paths")} for sc in scs],
                "results": results,
                "ratios": {sc["key"]: {f"ours/{o}": {
                    m: (round(results[sc["key"]]["ours"][m] / results[sc["key"]][o][m], 3)
                        if results[sc["key"]][o][m] else None)
                    for m in ("rps", "p50_ms", "p99_ms", "peak_rss_mb", "cpu_us_per_request")}
                    for o in ("verdaccio", "nginx") if "ours" in results[sc["key"]] and o in results[sc["key"]]}
                    for sc in scs},
                "log_problems": {k: v[:50] for k, v in problems.items()},
                "table": text,
            }, f, indent=2)
        log(f"results in {args.out}; total {time.time() - t_start:.0f} s")
        if not any(results.values()):
            log("no scenario produced a result")
            sys.exit(1)
    finally:
        stop_all()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
