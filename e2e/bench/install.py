"""Times `npm install` of one real project through our server and through Verdaccio 6, each
acting as a pull-through cache of the upstream registry that `npm config get registry` names:
once with an empty registry cache (cold) and once with everything cached (warm), a fresh npm cache
each time. The registries take turns going first (the upstream may cache too, which favours
whoever comes second), and each figure is the median over the rounds. Prints both, and the ratio.
A benchmark, not a test.

Usage: install.py --server-bin PATH --verdaccio DIR [--packages "express react ..."] [--rounds N]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

# The project of the uplink acceptance test (registry-server/tests/uplink.rs): 300+ packages.
PROJECT = "express react webpack typescript eslint jest"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "-/ping", timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not start")


def start(kind, args, work, upstream):
    port = free_port()
    storage = os.path.join(work, f"{kind}-storage")
    shutil.rmtree(storage, ignore_errors=True)
    os.makedirs(storage, exist_ok=True)
    config = os.path.join(work, f"{kind}.yaml")
    rules = "packages:\n  '**':\n    access: $all\n    publish: $authenticated\n    proxy: upstream\n"
    with open(config, "w") as f:
        f.write(f"storage: {storage}\nlisten: 127.0.0.1:{port}\nuplinks:\n  upstream:\n    url: {upstream}\n    timeout: 60s\n")
        f.write(rules)
        if kind == "verdaccio":
            f.write("middlewares:\n  audit:\n    enabled: false\nlog: {type: stdout, format: pretty, level: warn}\n")
        else:
            f.write("log: {type: stdout, format: json, level: warn}\n")
    log = open(os.path.join(work, f"{kind}.log"), "w")
    if kind == "verdaccio":
        cmd = ["node", os.path.join(args.verdaccio, "bin", "verdaccio"), "--config", config]
    else:
        cmd = [args.server_bin, "--config", config]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    wait_up(url)
    return proc, url


def install(url, work, label, packages):
    project = os.path.join(work, f"project-{label}")
    shutil.rmtree(project, ignore_errors=True)
    os.makedirs(project)
    with open(os.path.join(project, "package.json"), "w") as f:
        json.dump({"name": "bench-project", "version": "1.0.0", "private": True}, f)
    home = os.path.join(work, f"home-{label}")
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home)
    env = dict(os.environ, HOME=home, npm_config_cache=os.path.join(home, "cache"), npm_config_registry=url,
               npm_config_audit="false", npm_config_fund="false", npm_config_update_notifier="false",
               NPM_CONFIG_USERCONFIG=os.path.join(home, ".npmrc"))
    started = time.time()
    out = subprocess.run(["npm", "install", "--no-audit", "--no-fund", *packages.split()], cwd=project, env=env,
                         capture_output=True, text=True)
    took = time.time() - started
    if out.returncode != 0:
        raise SystemExit(f"install through {url} failed:\n{out.stderr[-3000:]}")
    lock = json.load(open(os.path.join(project, "package-lock.json")))
    return took, len([k for k in lock["packages"] if k])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server-bin", required=True)
    p.add_argument("--verdaccio", required=True)
    p.add_argument("--packages", default=PROJECT)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    upstream = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="install-bench-")
    runs = {"ours": [], "verdaccio": []}
    try:
        for r in range(args.rounds):
            order = ["ours", "verdaccio"] if r % 2 == 0 else ["verdaccio", "ours"]
            for kind in order:
                proc, url = start(kind, args, work, upstream)
                try:
                    cold, count = install(url, work, f"{kind}-cold", args.packages)
                    warm, _ = install(url, work, f"{kind}-warm", args.packages)
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                runs[kind].append({"cold_s": round(cold, 2), "warm_s": round(warm, 2), "packages": count})
                print(f"round {r + 1} {kind}: cold {cold:.1f}s, warm {warm:.1f}s, {count} packages", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {kind: {"cold_s": statistics.median(x["cold_s"] for x in rs),
                      "warm_s": statistics.median(x["warm_s"] for x in rs),
                      "packages": rs[0]["packages"], "runs": rs}
               for kind, rs in runs.items()}
    o, v = results["ours"], results["verdaccio"]
    print(f"npm install of: {args.packages} ({o['packages']} packages), fresh npm cache each run, "
          f"median of {args.rounds} rounds")
    print(f"{'':12}{'cold cache':>12}{'warm cache':>12}")
    print(f"{'ours':12}{o['cold_s']:>11.1f}s{o['warm_s']:>11.1f}s")
    print(f"{'verdaccio':12}{v['cold_s']:>11.1f}s{v['warm_s']:>11.1f}s")
    print(f"{'ours/verdaccio':12}{o['cold_s'] / v['cold_s']:>11.2f}x{o['warm_s'] / v['warm_s']:>11.2f}x  (time; lower is better)")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    with open(os.path.join(os.path.dirname(__file__), "results", "install.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
