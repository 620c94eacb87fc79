"""Paths of the real components that `make testbed` built, read from testbed/manifest.json."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

MANIFEST = Path(__file__).resolve().parents[2] / "testbed" / "manifest.json"
NOT_BUILT = "real testbed not built: run `make testbed`"


class Binary(BaseModel):
    path: Path
    component: str
    version: str


class Manifest(BaseModel):
    binaries: dict[str, Binary]


class TestbedNotBuilt(RuntimeError):
    pass


def load_manifest(path: Path = MANIFEST) -> Manifest:
    if not path.exists():
        raise TestbedNotBuilt(NOT_BUILT)
    return Manifest.model_validate_json(path.read_text())


def binary(name: str, manifest: Manifest | None = None) -> Path:
    """The built binary `name` (e.g. "kube-apiserver"); one clear error when it is missing."""
    entry = (manifest or load_manifest()).binaries.get(name)
    if entry is None or not entry.path.exists():
        raise TestbedNotBuilt(f"{NOT_BUILT} ({name} is missing)")
    return entry.path


def kubectl_binary() -> str | None:
    """The kubectl built by `make testbed` from the pinned Kubernetes release (never whichever one happens to
    be installed); None when the testbed is not built."""
    return str(binary("kubectl")) if MANIFEST.exists() else None
