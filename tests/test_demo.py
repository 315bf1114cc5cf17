"""`shomei demo` end to end: a real local node, anchoring, a QR verified from its image."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
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
        # The city's key, the wallet's key, credentials: for this user alone.
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        for path in tmp_path.rglob("*"):
            assert path.stat().st_mode & 0o077 == 0, path
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


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def below(pid: int) -> set[int]:
    """The processes below ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        try:
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rpartition(")")[2].split()[1]
            )
        except (ValueError, OSError):
            continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_demo_serves_under_gunicorn_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists() and os.environ.get("CI") != "true":
        pytest.skip("node_modules missing: run `npm ci`")
    env = dict(os.environ, SHOMEI_DATA_DIR=str(tmp_path))
    issuer, verifier, wallet = free_port(), free_port(), free_port()
    ports = ["--serve-port", str(issuer), "--verifier-port", str(verifier)]
    log = tmp_path / "demo.log"
    with log.open("w") as output:
        demo = subprocess.Popen(
            [*SHOMEI, "demo", "--port", str(free_port()), *ports, "--wallet-port", str(wallet)],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C" not in log.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert status_of(f"http://127.0.0.1:{issuer}/auth/login") == 200
        assert status_of(f"http://127.0.0.1:{verifier}/") == 200
        assert status_of(f"http://127.0.0.1:{wallet}/") == 200
        anvil = (tmp_path / "anvil" / "anvil.pid").read_text().strip()
        # Three gunicorn masters, their workers (issuer 2, verifier 2, wallet 1), anchoring;
        # a master forks its workers one after another, so the last may come a moment late.
        deadline = time.monotonic() + 20
        while len(services := below(demo.pid) - {int(anvil)}) < 9:
            assert time.monotonic() < deadline, services
            time.sleep(0.2)
        assert len(services) == 9, services

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group

        assert demo.wait(timeout=60) == 0, log.read_text()
        assert not [pid for pid in services if running(pid)], "nothing is left behind"
        assert "Traceback" not in log.read_text()
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        subprocess.run([*SHOMEI, "chain", "down"], env=env, cwd=ROOT, timeout=60)
