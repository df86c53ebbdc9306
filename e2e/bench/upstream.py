"""The pull-through cache against the real upstream registry (`npm config get registry`):

1. Cold GETs of the largest packuments, straight from upstream and through each server (a fresh
   storage each round), as npm sends them (`Accept-Encoding: gzip`), full and abbreviated; the
   server's RSS after them.
2. `npm install` of an app straight from upstream, through each server cold (empty storage,
   empty npm cache) and warm (the server's cache filled by the cold run, an empty npm cache),
   with each server's peak RSS (VmHWM) and its RSS once the install is done.

Servers: ours (--server-bin), optionally a second build of ours (--before-bin, e.g. the binary of
the previous commit, shown as "before"), and Verdaccio 6 (--verdaccio). They take turns going
first in each round (the upstream's own caches favour whoever comes second); figures are medians
over the rounds, with the spread. Prints tables and writes results/upstream.json. Skips, with the
reason, when the upstream does not answer. A benchmark, not a test: it never fails on figures.

Usage: upstream.py --server-bin PATH [--before-bin PATH] [--verdaccio DIR] [--rounds N]
                   [--packages "next vite ..."] [--app "next react ..."] [--skip-install]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from install import free_port, install, wait_up  # noqa: E402

BIG = "next vite prisma @types/node aws-sdk typescript"
APP = "next react react-dom typescript @types/node @aws-sdk/client-s3 eslint webpack"
FULL = "application/json"
ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


def upstream_url():
    out = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True)
    url = out.stdout.strip()
    return url if url.endswith("/") else url + "/"


def reachable(url):
    try:
        with urllib.request.urlopen(url + "-/ping", timeout=10) as r:
            return r.status < 500, None
    except urllib.error.HTTPError as e:
        return e.code < 500, None if e.code < 500 else f"it answered {e.code}"
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return False, str(e)


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid):
    """The process and its descendants (Verdaccio may fork)."""
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        for child in out.split():
            pids += tree(int(child))
    except OSError:
        pass
    return pids


class Server:
    def __init__(self, kind, binary, work, upstream, verdaccio=None):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        storage = os.path.join(work, f"{kind}-storage")
        shutil.rmtree(storage, ignore_errors=True)
        os.makedirs(storage)
        config = os.path.join(work, f"{kind}.yaml")
        with open(config, "w") as f:
            f.write(f"storage: {storage}\nlisten: 127.0.0.1:{self.port}\n")
            f.write(f"uplinks:\n  upstream:\n    url: {upstream}\n    timeout: 60s\n")
            f.write("packages:\n  '@*/*':\n    access: $all\n    publish: $authenticated\n    proxy: upstream\n")
            f.write("  '**':\n    access: $all\n    publish: $authenticated\n    proxy: upstream\n")
            if kind == "verdaccio":
                f.write("middlewares:\n  audit:\n    enabled: false\nlog: {type: stdout, format: pretty, level: warn}\n")
            else:
                f.write("log: {type: stdout, format: json, level: warn}\n")
        self.log = open(os.path.join(work, f"{kind}.log"), "a")
        if kind == "verdaccio":
            cmd = ["node", os.path.join(verdaccio, "bin", "verdaccio"), "--config", config]
            env = dict(os.environ, NODE_ENV="production")
        else:
            cmd = [binary, "--config", config]
            env = dict(os.environ)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, start_new_session=True, env=env)
        wait_up(self.url)
        self.peak_sampled = 0
        self._sampling = False

    def rss_mb(self):
        return sum(status_kib(p, "VmRSS") for p in tree(self.proc.pid)) / 1024

    def hwm_mb(self):
        return sum(status_kib(p, "VmHWM") for p in tree(self.proc.pid)) / 1024

    def sample(self):
        """Samples the tree's RSS every 100 ms until `stop_sampling` (VmHWM misses children)."""
        self._sampling = True

        def run():
            while self._sampling:
                self.peak_sampled = max(self.peak_sampled, self.rss_mb())
                time.sleep(0.1)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop_sampling(self):
        self._sampling = False
        self._thread.join()

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def get(url, accept):
    """One GET as npm sends it; (seconds, bytes received, status)."""
    req = urllib.request.Request(url, headers={"Accept": accept, "Accept-Encoding": "gzip"})
    started = time.time()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            n = len(r.read())
            return time.time() - started, n, r.status
    except urllib.error.HTTPError as e:
        return time.time() - started, 0, e.code


def escaped(name):
    return name.replace("/", "%2f")


def median_spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return statistics.median(xs), min(xs), max(xs)


def cold_gets(args, work, upstream, kinds, rounds):
    """{package: {accept: {"direct": [s...], kind: [s...]}}} and RSS after, per kind."""
    times = {}
    rss = {k: [] for k in kinds}
    for r in range(rounds):
        order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
        for kind in order:
            s = Server(kind, binaries(args).get(kind), work, upstream, args.verdaccio)
            try:
                for pkg in args.packages.split():
                    for accept_name, accept in (("full", FULL), ("abbreviated", ABBREVIATED)):
                        slot = times.setdefault(pkg, {}).setdefault(accept_name, {})
                        d, size, _ = get(upstream + escaped(pkg), accept)
                        slot.setdefault("direct", []).append(d)
                        slot.setdefault("direct_bytes", size)
                        t, n, status = get(s.url + escaped(pkg), accept)
                        slot.setdefault(kind, []).append(t if status == 200 else None)
                        slot.setdefault(f"{kind}_bytes", n)
                        print(f"round {r + 1} {kind:9} {pkg:14} {accept_name:11} direct {d:.2f}s "
                              f"through {t:.2f}s ({status}, {n / 1e6:.1f} MB)", flush=True)
                rss[kind].append(s.rss_mb())
            finally:
                s.stop()
    return times, rss


def installs(args, work, upstream, kinds, rounds):
    runs = {k: [] for k in ["straight"] + kinds}
    for r in range(rounds):
        order = (["straight"] + kinds)
        order = order[r % len(order):] + order[: r % len(order)]
        for kind in order:
            if kind == "straight":
                took, count = install(upstream, work, f"straight-{r}", args.app)
                runs[kind].append({"cold_s": round(took, 2), "packages": count})
                print(f"round {r + 1} straight: {took:.1f}s, {count} packages", flush=True)
                continue
            s = Server(kind, binaries(args).get(kind), work, upstream, args.verdaccio)
            try:
                s.sample()
                cold, count = install(s.url, work, f"{kind}-cold-{r}", args.app)
                after_cold = s.rss_mb()
                warm, _ = install(s.url, work, f"{kind}-warm-{r}", args.app)
                s.stop_sampling()
                peak = max(s.hwm_mb(), s.peak_sampled)
                after = s.rss_mb()
            finally:
                s.stop()
            runs[kind].append({"cold_s": round(cold, 2), "warm_s": round(warm, 2), "packages": count,
                               "peak_rss_mb": round(peak, 1), "rss_after_cold_mb": round(after_cold, 1),
                               "rss_after_mb": round(after, 1)})
            print(f"round {r + 1} {kind}: cold {cold:.1f}s, warm {warm:.1f}s, {count} packages, "
                  f"peak RSS {peak:.0f} MB, after {after:.0f} MB", flush=True)
    return runs


def binaries(args):
    b = {"ours": args.server_bin}
    if args.before_bin:
        b["before"] = args.before_bin
    return b


def fmt(m):
    med, lo, hi = m
    if med is None:
        return "failed"
    return f"{med:.2f} ({lo:.2f}-{hi:.2f})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server-bin", required=True)
    p.add_argument("--before-bin")
    p.add_argument("--verdaccio")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--packages", default=BIG)
    p.add_argument("--app", default=APP)
    p.add_argument("--skip-install", action="store_true")
    p.add_argument("--skip-gets", action="store_true")
    args = p.parse_args()
    upstream = upstream_url()
    ok, why = reachable(upstream)
    if not ok:
        print(f"skipped: the upstream registry from `npm config get registry` ({upstream}) does not answer"
              + (f": {why}" if why else ""))
        return 0
    kinds = list(binaries(args))
    if args.verdaccio:
        kinds.append("verdaccio")
    work = tempfile.mkdtemp(prefix="upstream-bench-")
    results = {"upstream": "npm config get registry", "rounds": args.rounds, "app": args.app}
    try:
        if not args.skip_gets:
            ours = [k for k in kinds if k != "verdaccio"]
            times, rss = cold_gets(args, work, upstream, ours, args.rounds)
            results["cold_gets"] = times
            results["rss_after_gets_mb"] = rss
        if not args.skip_install:
            results["install"] = installs(args, work, upstream, kinds, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = []
    if "cold_gets" in results:
        ours = [k for k in kinds if k != "verdaccio"]
        lines.append("Cold GET (s, median (min-max) of %d rounds; Accept-Encoding: gzip)" % args.rounds)
        head = f"{'package':16}{'document':13}{'direct':>20}" + "".join(f"{k:>20}" for k in ours)
        lines.append(head + f"{'2x direct + 0.3 s':>20}")
        for pkg, by in results["cold_gets"].items():
            for doc, slot in by.items():
                direct = median_spread(slot["direct"])
                row = f"{pkg:16}{doc:13}{fmt(direct):>20}" + "".join(f"{fmt(median_spread(slot[k])):>20}" for k in ours)
                lines.append(row + f"{2 * direct[0] + 0.3:>20.2f}")
        lines.append("RSS after those GETs (MB): " + ", ".join(
            f"{k} {statistics.median(v):.0f}" for k, v in results["rss_after_gets_mb"].items()))
    if "install" in results:
        runs = results["install"]
        lines.append("")
        lines.append(f"npm install {args.app} (fresh npm cache each; s, median (min-max) of {args.rounds} rounds)")
        lines.append(f"{'':12}{'cold':>20}{'warm':>20}{'peak RSS MB':>20}{'RSS after MB':>16}")
        straight = median_spread([x["cold_s"] for x in runs["straight"]])
        lines.append(f"{'straight':12}{fmt(straight):>20}")
        for k in kinds:
            cold = median_spread([x["cold_s"] for x in runs[k]])
            warm = median_spread([x["warm_s"] for x in runs[k]])
            peak = median_spread([x["peak_rss_mb"] for x in runs[k]])
            after = statistics.median(x["rss_after_mb"] for x in runs[k])
            lines.append(f"{k:12}{fmt(cold):>20}{fmt(warm):>20}{fmt(peak):>20}{after:>16.0f}")
        for k in kinds:
            cold = median_spread([x["cold_s"] for x in runs[k]])[0]
            warm = median_spread([x["warm_s"] for x in runs[k]])[0]
            lines.append(f"{k}/straight: cold {cold / straight[0]:.2f}x, warm {warm / straight[0]:.2f}x")
        if "verdaccio" in runs:
            v = statistics.median(x["peak_rss_mb"] for x in runs["verdaccio"])
            for k in kinds:
                if k != "verdaccio":
                    o = statistics.median(x["peak_rss_mb"] for x in runs[k])
                    lines.append(f"peak RSS {k}/verdaccio: {o / v:.2f}x")
    table = "\n".join(lines)
    print()
    print(table)
    results["table"] = table
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "upstream.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
