"""Build the real components of the testbed from the Go module proxy (`make testbed`).

Each component is a pinned wrapper module under testbed/<name>/ (go.mod + go.sum [+ main.go]). It is built
with `nice -n 19 go build` into a temporary directory, every binary is run once (`--version` or the
equivalent) and only then is the directory moved to

    ${PEERSYNC_TESTBED_CACHE:-~/.cache/peersync-testbed}/<name>-<version>/bin/

so the cache never holds a half-built component. A component whose directory holds the same build
fingerprint (wrapper files, recipe, Go version) is reported as "cached" and costs nothing; a version bump
changes go.mod and so rebuilds. When every component is present, testbed/manifest.json lists the binaries
(path, component, version, how to check them); when any build fails the manifest is removed, the failure is
one line naming the component and its log file, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
SCHEMA = 1


@dataclass(frozen=True)
class Component:
    name: str  # folder under testbed/ and cache key prefix
    module: str  # the upstream module whose version is pinned
    version: str  # must equal the require in testbed/<name>/go.mod (checked here and in tests)
    binaries: dict[str, str]  # binary name -> package to build (relative to the wrapper module)
    check: dict[str, list[str]]  # binary name -> arguments that print its version
    expect: str  # text the version output must contain
    ldflags: list[str] = field(default_factory=list)
    toolchain: str | None = None  # GOTOOLCHAIN for a component that needs another Go (also in its go.mod)


KUBE_VERSION = "v1.32.13"
_KUBE_X = [
    f"-X {pkg}.{var}={val}"
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    for var, val in (
        ("gitVersion", KUBE_VERSION),
        ("gitMajor", "1"),
        ("gitMinor", "32"),
        ("gitTreeState", "clean"),
    )
]
_SDK = "github.com/cosmos/cosmos-sdk/version"

COMPONENTS: list[Component] = [
    Component(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="v3.5.24",
        binaries={"etcd": "."},
        check={"etcd": ["--version"]},
        expect="etcd Version: 3.5.24",
    ),
    Component(
        name="kube",
        module="k8s.io/kubernetes",
        version=KUBE_VERSION,
        binaries={
            b: f"k8s.io/kubernetes/cmd/{b}"
            for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        },
        check={
            "kube-apiserver": ["--version"],
            "kube-controller-manager": ["--version"],
            "kube-scheduler": ["--version"],
            "kubectl": ["version", "--client"],
        },
        expect=KUBE_VERSION,
        ldflags=["-s", "-w", *_KUBE_X],
    ),
    Component(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version="v0.8.0",
        binaries={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        check={"kwok": ["--version"]},
        expect="0.8.0",
    ),
    Component(
        name="cometbft",
        module="github.com/cometbft/cometbft",
        version="v0.38.26",
        binaries={"cometbft": "github.com/cometbft/cometbft/cmd/cometbft"},
        check={"cometbft": ["version"]},
        expect="0.38.26",
    ),
    Component(
        name="provider",
        module="github.com/cosmos/interchain-security/v7",
        version="v7.0.1",
        binaries={
            "interchain-security-pd": "github.com/cosmos/interchain-security/v7/cmd/interchain-security-pd"
        },
        check={"interchain-security-pd": ["version"]},
        expect="v7.0.1",
        ldflags=[
            f"-X {_SDK}.Name=interchain-security-pd",
            f"-X {_SDK}.AppName=interchain-security-pd",
            f"-X {_SDK}.Version=v7.0.1",
        ],
        # sonic v1.12.3 (via the SDK) links only with Go < 1.26; upstream builds v7.0.1 with Go 1.23.
        toolchain="go1.23.12",
    ),
]

# Static binaries, no VCS stamping (the wrapper may sit in a dirty checkout), go.mod/go.sum never rewritten.
BUILD_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}


def cache_root() -> Path:
    default = Path.home() / ".cache" / "peersync-testbed"
    return Path(os.environ.get("PEERSYNC_TESTBED_CACHE") or default).expanduser().resolve()


def required_version(go_mod: Path, module: str) -> str | None:
    """The version `go_mod` requires for `module` (single-line or block form), or None."""
    in_block = False
    for raw in go_mod.read_text().splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
                continue
        elif line == "require (":
            in_block = True
            continue
        elif line.startswith("require "):
            line = line.removeprefix("require ").strip()
        else:
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0] == module:
            return parts[1]
    return None


def go_version() -> str:
    out = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def fingerprint(c: Component, go: str) -> str:
    go = c.toolchain or go
    h = hashlib.sha256()
    recipe = {k: v for k, v in vars(c).items() if k != "check"}
    h.update(json.dumps([SCHEMA, go, recipe, BUILD_ENV], sort_keys=True).encode())
    for f in sorted((HERE / c.name).iterdir()):
        if f.is_file() and (f.name in ("go.mod", "go.sum") or f.suffix == ".go"):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def component_dir(c: Component) -> Path:
    return cache_root() / f"{c.name}-{c.version}"


def is_cached(c: Component, fp: str) -> bool:
    d = component_dir(c)
    try:
        stamp = json.loads((d / "build.json").read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("fingerprint") == fp and all(os.access(d / "bin" / b, os.X_OK) for b in c.binaries)


def version_output(binary: Path, args: list[str]) -> str:
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


class BuildError(Exception):
    pass


def first_error(log: Path) -> str:
    """The most telling line of a failed build log: a compiler error, else an error-ish line, else the last."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("go: downloading", "$ "))]
    for pattern in (r"\.go:\d+:\d+: ", r"error|cannot|undefined|not available|no required module|invalid"):
        for ln in lines:
            if re.search(pattern, ln, re.I):
                return ln
    return lines[-1] if lines else "no output"


def build(c: Component, fp: str, go: str, log: Path) -> None:
    """Build, check and atomically install one component; raise BuildError with a one-line reason."""
    root = cache_root()
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{c.name}-", dir=root))
    try:
        bindir = tmp / "bin"
        bindir.mkdir()
        env = {**os.environ, **BUILD_ENV}
        if c.toolchain:
            env["GOTOOLCHAIN"] = c.toolchain  # fetched once from the module proxy (golang.org/toolchain)
        with log.open("w") as out:
            for binary, pkg in c.binaries.items():
                # One package per go build keeps the -o name explicit; the Go build cache shares the rest.
                cmd = ["nice", "-n", "19", "go", "build", "-trimpath", "-o", str(bindir / binary)]
                if c.ldflags:
                    cmd.append("-ldflags=" + " ".join(c.ldflags))
                cmd.append(pkg)
                out.write(f"$ (cd {HERE / c.name} && {' '.join(cmd)})\n")
                out.flush()
                t0 = time.monotonic()
                rc = subprocess.run(
                    cmd, cwd=HERE / c.name, env=env, stdout=out, stderr=subprocess.STDOUT
                ).returncode
                if rc != 0:
                    raise BuildError(f"go build {pkg} exited {rc}: {first_error(log)}")
                out.write(f"# {binary}: {fmt(time.monotonic() - t0)}\n")
            for binary, args in c.check.items():
                text = version_output(bindir / binary, args)
                out.write(f"$ {binary} {' '.join(args)}\n{text}\n")
                if c.expect not in text:
                    raise BuildError(
                        f"`{binary} {' '.join(args)}` does not report {c.expect!r}: {text.strip()[:200]!r}"
                    )
        (tmp / "build.json").write_text(
            json.dumps(
                {
                    "component": c.name,
                    "module": c.module,
                    "version": c.version,
                    "go": c.toolchain or go,
                    "fingerprint": fp,
                },
                indent=2,
            )
        )
        final = component_dir(c)
        if final.exists():  # an older build with another fingerprint: swap it out, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".old-{c.name}-", dir=root))
            final.rename(old / "dir")
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_manifest(go: str) -> None:
    binaries = {}
    components = {}
    for c in COMPONENTS:
        d = component_dir(c)
        components[c.name] = {
            "module": c.module,
            "version": c.version,
            "go": c.toolchain or go,
            "dir": str(d),
        }
        for b in c.binaries:
            binaries[b] = {
                "path": str(d / "bin" / b),
                "component": c.name,
                "version": c.version,
                "check": c.check[b],
                "expect": c.expect,
            }
    doc = {
        "schema": SCHEMA,
        "go": go,
        "cache": str(cache_root()),
        "components": components,
        "binaries": binaries,
    }
    tmp = MANIFEST.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(MANIFEST)


def fmt(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("components", nargs="*", help="build only these (default: all); the manifest needs all")
    args = p.parse_args(argv)
    names = [c.name for c in COMPONENTS]
    unknown = [n for n in args.components if n not in names]
    if unknown:
        p.error(f"unknown component(s) {unknown}; known: {names}")
    selected = [c for c in COMPONENTS if not args.components or c.name in args.components]

    if shutil.which("go") is None:
        print("testbed: FAILED: no `go` on PATH (Go 1.26 is needed to build the testbed)", file=sys.stderr)
        return 1
    go = go_version()
    root = cache_root()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    print(f"testbed: {go}, cache {root}")
    lock = (root / ".lock").open("w")  # one build at a time per cache; released when the process exits
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("testbed: another `make testbed` is using this cache; waiting for it", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)

    failed = []
    total = time.monotonic()
    for c in selected:
        label = f"{c.name} {c.version}"
        pinned = required_version(HERE / c.name / "go.mod", c.module)
        if pinned != c.version:
            print(
                f"testbed: FAILED {label}: testbed/{c.name}/go.mod requires {c.module} {pinned}",
                file=sys.stderr,
            )
            failed.append(c.name)
            continue
        fp = fingerprint(c, go)
        if is_cached(c, fp):
            print(f"testbed: {label}: cached ({component_dir(c)})")
            continue
        log = root / "logs" / f"{c.name}-{c.version}.log"
        with_go = f" with {c.toolchain}" if c.toolchain else ""
        print(f"testbed: {label}: building {', '.join(c.binaries)}{with_go} ...", flush=True)
        t0 = time.monotonic()
        try:
            build(c, fp, go, log)
        except (BuildError, OSError, subprocess.SubprocessError) as e:
            print(
                f"testbed: FAILED {label} after {fmt(time.monotonic() - t0)}: {e} (full log: {log})",
                file=sys.stderr,
            )
            failed.append(c.name)
            continue
        print(f"testbed: {label}: built in {fmt(time.monotonic() - t0)} ({component_dir(c)})", flush=True)

    complete = not failed and all(is_cached(c, fingerprint(c, go)) for c in COMPONENTS)
    if complete:
        write_manifest(go)
        print(f"testbed: ready in {fmt(time.monotonic() - total)}; manifest {MANIFEST}")
        return 0
    MANIFEST.unlink(missing_ok=True)  # never leave a manifest that points at an incomplete testbed
    if failed:  # each failure already printed its one line
        return 1
    print("testbed: built the selected components; run `make testbed` for the full set and the manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
