#!/usr/bin/env python3
"""Generates a registry storage folder in Verdaccio's on-disk layout, deterministically.

    <out>/<name>/package.json      the stored packument (versions, dist-tags, time, _attachments, _rev, ...)
    <out>/<name>/<name>-<v>.tgz    every version's tarball (a real gzipped tar, random payload)
    <out>/.verdaccio-db.json       {"list": [...], "secret": "..."}

Both Verdaccio and npm-registry-server read this layout as it is, so the benchmark serves the
same bytes from both (and nginx serves what npm-registry-server answers for it).

Packages the benchmark scenarios use by name:
    bench-large      300 versions, a full packument of about 360 KB
    bench-small      2 versions, a full packument of about 4 KB
    bench-tarball    one version whose tarball is about 600 KB
    bench-pub-NN     one small version each; the "hot" publish scenario adds versions to them
    bench-spread-NNN 30 versions each (tarballs not written); the publish scenario adds to them

Usage: seed.py OUT [--packages 200] [--large 10] [--seed 8]
"""

import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile

KB = 1024
MB = 1024 * 1024
STORED_BASE = "http://localhost:4873/"  # what Verdaccio writes into dist.tarball; both rewrite it on read
MTIME = 1700000000  # fixed, so the generated tarballs are byte-identical between runs

WORDS = (
    "fast tiny async stream parser buffer json yaml http client server cache retry queue pool "
    "config logger color path glob watch build bundle test mock assert schema validate format "
    "date time uuid hash crypto token auth session cookie router middleware plugin loader "
    "compile transform minify lint diff merge deep clone equal array object string number"
).split()
DEPS = (
    "lodash chalk debug semver commander yargs minimist glob rimraf mkdirp uuid ms "
    "readable-stream safe-buffer inherits once wrappy ansi-styles supports-color escape-string-regexp "
    "tslib rxjs zone.js core-js regenerator-runtime @babel/runtime axios follow-redirects "
    "form-data mime-types mime-db qs ws cross-spawn which isexe picomatch micromatch braces"
).split()
DEV_DEPS = (
    "typescript eslint prettier jest mocha chai sinon nyc @types/node ts-node rollup webpack "
    "@babel/core @babel/preset-env husky lint-staged standard-version c8 tap"
).split()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def make_tarball(rng: random.Random, name: str, version: str, size: int) -> bytes:
    """A real npm tarball (package/package.json, package/index.js, package/data.bin) of about
    `size` bytes: the payload is random, so gzip leaves it at its size."""
    manifest = json.dumps({"name": name, "version": version, "main": "index.js"}, indent=2).encode()
    index = f"module.exports = {json.dumps(name)};\n".encode()
    payload = rng.randbytes(max(0, size - 1200))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in (("package/package.json", manifest), ("package/index.js", index),
                           ("package/data.bin", payload)):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def versions_sequence(n: int) -> list:
    """n ascending semver versions: 0.1.0 ... with patches and minors, like a long-lived package."""
    out = []
    major, minor, patch = 0, 1, 0
    rng = random.Random(n)
    while len(out) < n:
        out.append(f"{major}.{minor}.{patch}")
        r = rng.random()
        if r < 0.70:
            patch += 1
        elif r < 0.97:
            minor, patch = minor + 1, 0
        else:
            major, minor, patch = major + 1, 0, 0
    return out


def iso(ts: float) -> str:
    import datetime
    d = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def version_manifest(rng, name, version, tar_bytes, description, keywords):
    deps = {d: f"^{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
            for d in rng.sample(DEPS, rng.randint(2, 4))}
    dev = {d: f"^{rng.randint(1, 29)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
           for d in rng.sample(DEV_DEPS, rng.randint(2, 4))}
    return {
        "name": name,
        "version": version,
        "description": description,
        "main": "index.js",
        "scripts": {"test": "jest"},
        "repository": {"type": "git", "url": f"git+https://git.example.com/bench/{name}.git"},
        "keywords": keywords,
        "author": {"name": "Bench Author", "email": "author@example.com"},
        "license": "MIT",
        "homepage": f"https://git.example.com/bench/{name}#readme",
        "dependencies": deps,
        "devDependencies": dev,
        "engines": {"node": ">=14"},
        "gitHead": rng.randbytes(20).hex(),
        "_id": f"{name}@{version}",
        "_nodeVersion": "20.11.1",
        "_npmVersion": "10.2.4",
        "dist": {
            "integrity": sri(tar_bytes),
            "shasum": hashlib.sha1(tar_bytes).hexdigest(),
            "tarball": f"{STORED_BASE}{name}/-/{name}-{version}.tgz",
            "fileCount": 3,
            "unpackedSize": len(tar_bytes) + 300,
        },
        "_npmUser": {"name": "bench", "email": "bench@example.com"},
        "maintainers": [{"name": "bench", "email": "bench@example.com"}],
        "directories": {},
        "_hasShrinkwrap": False,
    }


def write_package(out, rng, name, sizes, readme_len=1200, tarballs=True):
    """Writes <out>/<name>/ with one version per entry of `sizes` (tarball bytes); without
    `tarballs`, only the packument (for packages that are only ever published to)."""
    pdir = os.path.join(out, name)
    os.makedirs(pdir, exist_ok=True)
    versions = versions_sequence(len(sizes))
    description = " ".join(rng.sample(WORDS, 8)).capitalize() + "."
    keywords = rng.sample(WORDS, 5)
    t0 = 1500000000 + rng.randint(0, 10**7)
    doc_versions, times, attachments = {}, {}, {}
    for i, (version, size) in enumerate(zip(versions, sizes)):
        tar_bytes = make_tarball(rng, name, version, size)
        fname = f"{name}-{version}.tgz"
        if tarballs:
            with open(os.path.join(pdir, fname), "wb") as f:
                f.write(tar_bytes)
        doc_versions[version] = version_manifest(rng, name, version, tar_bytes, description, keywords)
        times[version] = iso(t0 + i * 86400 * 3)
        attachments[fname] = {"shasum": doc_versions[version]["dist"]["shasum"], "version": version}
    latest = versions[-1]
    readme = f"# {name}\n\n{description}\n\n" + " ".join(rng.choice(WORDS) for _ in range(readme_len // 6))
    doc = {
        "_id": name,
        "name": name,
        "description": description,
        "dist-tags": {"latest": latest},
        "versions": doc_versions,
        "time": {"created": iso(t0), "modified": times[latest], **times},
        "users": {},
        "maintainers": [{"name": "bench", "email": "bench@example.com"}],
        "readme": readme,
        "readmeFilename": "README.md",
        "homepage": doc_versions[latest]["homepage"],
        "repository": doc_versions[latest]["repository"],
        "keywords": keywords,
        "license": "MIT",
        "author": doc_versions[latest]["author"],
        "_uplinks": {},
        "_distfiles": {},
        "_attachments": attachments,
        "_rev": f"{len(versions)}-{rng.randbytes(8).hex()}",
    }
    body = json.dumps(doc, indent=2).encode()
    with open(os.path.join(pdir, "package.json"), "wb") as f:
        f.write(body)
    return len(body)


def small_tarball_size(rng):
    """10 KB - 60 KB: what most packages ship."""
    return rng.randint(10 * KB, 60 * KB)


SPREAD_PACKAGES = 512
SPREAD_VERSIONS = 30


def generate(out, packages=200, large=10, seed=8, log=print):
    """Returns the names of the packages with every tarball stored (what nginx serves)."""
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    names = []
    total = 0

    def add(name, sizes, **kw):
        nonlocal total
        write_package(out, rng, name, sizes, **kw)
        names.append(name)
        total += sum(sizes)

    # The named packages the scenarios hit.
    add("bench-large", [rng.randint(8 * KB, 14 * KB) for _ in range(300)])
    add("bench-small", [small_tarball_size(rng) for _ in range(2)], readme_len=700)
    add("bench-tarball", [600 * KB])
    for i in range(16):
        add(f"bench-pub-{i:02d}", [10 * KB], readme_len=200)
    # Other large packages: 300 - 420 versions.
    for i in range(max(0, large - 1)):
        add(f"large-pkg-{i:02d}", [rng.randint(8 * KB, 14 * KB) for _ in range(rng.randint(300, 420))])
    # The rest: 1 - 4 versions; the latest tarball is usually small, sometimes 100 KB - 1 MB,
    # rarely 1 - 5 MB.
    i = 0
    while len(names) < packages:
        n = rng.randint(1, 4)
        sizes = [small_tarball_size(rng) for _ in range(n)]
        r = rng.random()
        if r < 0.06:
            sizes[-1] = rng.randint(1 * MB, 5 * MB)
        elif r < 0.25:
            sizes[-1] = rng.randint(100 * KB, 1 * MB)
        add(f"pkg-{i:03d}-{rng.choice(WORDS)}", sizes)
        i += 1

    # Publish targets: packages of a typical size (about 30 KB of packument), many enough that
    # the run adds only a few versions to each, so that a faster server does not end up
    # rewriting bigger documents than a slower one.
    spread = [f"bench-spread-{i:03d}" for i in range(SPREAD_PACKAGES)]
    for name in spread:
        write_package(out, rng, name, [1200] * SPREAD_VERSIONS, readme_len=200, tarballs=False)

    with open(os.path.join(out, ".verdaccio-db.json"), "w") as f:
        json.dump({"list": sorted(names + spread), "secret": rng.randbytes(16).hex()}, f)
    log(f"seeded {len(names)} packages, {total / MB:.0f} MB of tarballs, into {out}")
    return names


def publish_tarball(seed=8) -> bytes:
    """The small tarball the publish scenario sends with every version (servers check its
    integrity against dist, not its content)."""
    return make_tarball(random.Random(seed), "bench-pub", "0.0.0", 4 * KB)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--large", type=int, default=10)
    ap.add_argument("--seed", type=int, default=8)
    a = ap.parse_args()
    generate(a.out, a.packages, a.large, a.seed)


if __name__ == "__main__":
    sys.exit(main())
