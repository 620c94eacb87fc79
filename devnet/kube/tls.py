"""A throwaway self-signed certificate, so the emulator can serve HTTPS (`KubeEmulator(tls=True)`).

Needed for credentials, not for privacy: kubectl (client-go's clientcmd) drops every user credential of a
kubeconfig, tokens included, when the server URL is plain http, so a service account's view of the cluster can
only be tried with kubectl over TLS. The certificate is its own CA; kubeconfigs carry it as
certificate-authority-data. Generated with the openssl CLI because the standard library cannot make one.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain only reads files
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


def _san(hosts: list[str]) -> str:
    entries = []
    for host in dict.fromkeys(hosts):
        try:
            ipaddress.ip_address(host)
            entries.append(f"IP:{host}")
        except ValueError:
            entries.append(f"DNS:{host}")
    return "subjectAltName=" + ",".join(entries)


def self_signed(hosts: list[str], days: int = 30) -> Certificate:
    """An EC P-256 certificate valid for `hosts` (IP addresses or DNS names); RuntimeError without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("KubeEmulator(tls=True) needs the openssl command to make its certificate")
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                str(days),
                "-subj",
                "/CN=kube-emulator",
                "-addext",
                _san(hosts),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return Certificate(cert.read_bytes(), key.read_bytes())
