"""`shomei demo` end to end: a real local node, anchoring, a QR verified from its image."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOMEI = [sys.executable, "-c", "import shomei_cli; shomei_cli.main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_demo_anchors_and_verifies_then_runs_again(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists() and os.environ.get("CI") != "true":
        pytest.skip("node_modules missing: run `npm ci`")
    env = dict(os.environ, SHOMEI_DATA_DIR=str(tmp_path))

    def shomei(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SHOMEI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
        )

    try:
        first = shomei("demo", "--port", str(free_port()), "--no-serve")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "判定: 有効 (valid)" in first.stdout
        assert "記録: ブロック" in first.stdout and "✔ anchor" in first.stdout
        qr_png = tmp_path / "demo" / "juminhyo-qr.png"
        again = shomei("verify", "--image", str(qr_png), "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        assert '"block"' in again.stdout
        second = shomei("demo", "--no-serve")  # reuses the running node, the registry and the keys
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout and "判定: 有効 (valid)" in second.stdout
        offline = shomei(
            "verify",
            "--image",
            str(qr_png),
            "--offline",
            "--snapshot",
            str(tmp_path / "demo" / "registry-snapshot.json"),
        )
        assert offline.returncode == 0, offline.stdout + offline.stderr
    finally:
        shomei("chain", "down")
    assert "Traceback" not in first.stderr + second.stderr
