"""The pinned testbed builds (testbed/build.py, `make testbed`): pins are consistent, built binaries run.

Nothing is built here. The pin checks read only committed files; the binary checks need the manifest that
`make testbed` writes and skip, loudly and with the reason, when it is missing.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

TESTBED = Path(__file__).resolve().parents[2] / "testbed"

_spec = importlib.util.spec_from_file_location("peersync_testbed_build", TESTBED / "build.py")
build = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = build  # dataclasses look their module up there
_spec.loader.exec_module(build)

COMPONENTS = {c.name: c for c in build.COMPONENTS}
BINARIES = {b: c for c in build.COMPONENTS for b in c.binaries}


def go_mod(name: str) -> str:
    return (TESTBED / name / "go.mod").read_text()


def tools(name: str) -> set[str]:
    """Packages a wrapper keeps in its build list: `tool` directives, or tools.go imports (Go < 1.24)."""
    text = go_mod(name)
    found = set(re.findall(r"^tool\s+([^\s(]\S*)\s*$", text, re.M))
    for block in re.findall(r"^tool \($(.*?)^\)", text, re.M | re.S):
        found.update(ln.split("//")[0].strip() for ln in block.splitlines() if ln.split("//")[0].strip())
    tools_go = TESTBED / name / "tools.go"
    if tools_go.exists():
        found.update(re.findall(r'^import _ "([^"]+)"', tools_go.read_text(), re.M))
    return found


def test_every_component_folder_is_built():
    folders = {p.parent.name for p in TESTBED.glob("*/go.mod")}
    assert folders == set(COMPONENTS)


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_pinned_version_is_what_go_mod_requires(name):
    c = COMPONENTS[name]
    assert build.required_version(TESTBED / name / "go.mod", c.module) == c.version


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_go_sum_is_committed_for_the_pinned_module(name):
    c = COMPONENTS[name]
    go_sum = (TESTBED / name / "go.sum").read_text()
    assert f"{c.module} {c.version} h1:" in go_sum
    assert f"{c.module} {c.version}/go.mod h1:" in go_sum


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_wrapper_declares_exactly_the_packages_built(name):
    c = COMPONENTS[name]
    upstream = {pkg for pkg in c.binaries.values() if pkg != "."}
    assert tools(name) == upstream
    if "." in c.binaries.values():  # a local main: it must exist and be the only one
        assert (TESTBED / name / "main.go").is_file()
    assert set(c.check) == set(c.binaries)


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_toolchain_pin_matches_go_mod(name):
    c = COMPONENTS[name]
    toolchain = re.search(r"^toolchain (\S+)$", go_mod(name), re.M)
    assert (toolchain.group(1) if toolchain else None) == c.toolchain


def test_kube_staging_modules_are_pinned_to_the_same_release():
    kube = COMPONENTS["kube"]
    minor = kube.version.replace("v1.", "v0.", 1)  # v1.32.13 -> v0.32.13
    replaces = dict(re.findall(r"^\s*(k8s\.io/[\w-]+) => k8s\.io/[\w-]+ (v\S+)", go_mod("kube"), re.M))
    assert len(replaces) >= 25, replaces
    # endpointslice v0.32.13 is not served by the proxy; its v0.32.12 tag has the same source (README).
    exceptions = {"k8s.io/endpointslice": "v0.32.12"}
    for module, version in replaces.items():
        assert version == exceptions.get(module, minor), module
    assert f"-X k8s.io/component-base/version.gitVersion={kube.version}" in kube.ldflags


def test_readme_names_every_pinned_version():
    readme = (TESTBED / "README.md").read_text()
    for c in build.COMPONENTS:
        assert f"{c.module} {c.version}" in readme or f"{c.module}@{c.version}" in readme, c.name


def test_required_version_reads_both_require_forms(tmp_path):
    gm = tmp_path / "go.mod"
    gm.write_text(
        "module x\n\nrequire a.example/one v1.2.3\n\nrequire (\n\tb.example/two v0.4.0 // indirect\n)\n"
    )
    assert build.required_version(gm, "a.example/one") == "v1.2.3"
    assert build.required_version(gm, "b.example/two") == "v0.4.0"
    assert build.required_version(gm, "c.example/three") is None


def _manifest() -> dict:
    if not build.MANIFEST.exists():
        reason = (
            f"TESTBED NOT BUILT: {build.MANIFEST} is missing, so the real binaries were NOT checked; "
            "run `make testbed` (needs Go 1.26 and the Go module proxy) to build them"
        )
        warnings.warn(reason, stacklevel=2)
        pytest.skip(reason)
    return json.loads(build.MANIFEST.read_text())


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_built_binary_runs_and_reports_the_pinned_version(binary):
    manifest = _manifest()
    c = BINARIES[binary]
    entry = manifest["binaries"].get(binary)
    assert entry, f"{binary} missing from {build.MANIFEST}: run `make testbed`"
    assert entry["version"] == c.version, (
        f"stale manifest ({entry['version']} != {c.version}): run `make testbed`"
    )
    path = Path(entry["path"])
    assert path.is_file(), f"{path} is gone: run `make testbed`"
    out = subprocess.run([str(path), *c.check[binary]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert c.expect in out.stdout + out.stderr
