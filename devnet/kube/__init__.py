"""Kubernetes API emulator for the devnet and the tests (see README.md in this package)."""

from devnet.kube.server import KubeEmulator

__all__ = ["KubeEmulator"]
