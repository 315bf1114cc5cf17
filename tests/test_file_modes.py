"""Files other local users cannot read: the data directory 0700, every file in it 0600,
whatever the umask the command was started with (here a permissive 0o022)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anchor import files
from anchor.config import ChainConfig, data_dir

SHOMEI = Path(sys.executable).with_name("shomei")
PASSPHRASE = "file-modes 証明"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask many shells start with: new files 0644, new directories 0755."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def shomei(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        SHOMEI_DATA_DIR=str(data),
        SHOMEI_KEY_PASSPHRASE=PASSPHRASE,
        SHOMEI_USER_PASSWORD="a long password 2026",
        PYTHONWARNINGS="error",
    )
    run = subprocess.run(
        [str(SHOMEI), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    return run


def modes(directory: Path) -> dict[str, int]:
    """The permission bits of ``directory`` ('.') and of everything under it."""
    found = {".": stat.S_IMODE(directory.stat().st_mode)}
    for path in directory.rglob("*"):
        if not path.is_symlink():
            found[path.relative_to(directory).as_posix()] = stat.S_IMODE(path.stat().st_mode)
    return found


def open_to_others(directory: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(directory).items() if mode & 0o077}


def init_issuer(data: Path) -> None:
    shomei(
        data,
        "issuer",
        "init",
        "--issuer-id",
        "https://city.example.jp",
        "--name",
        "飯塚市",
        "--municipality-code",
        "402052",
    )


@pytest.mark.usefixtures("permissive_umask")
def test_issuer_commands_make_a_private_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_issuer(data)
    shomei(data, "issuer", "migrate")
    shomei(data, "issuer", "create-user", "sato", "--role", "clerk", "--display-name", "佐藤")
    found = modes(data)
    assert {"issuer", "shomei.db"} <= found.keys()
    assert found["."] == 0o700
    assert found["shomei.db"] == 0o600
    assert open_to_others(data) == {}


@pytest.mark.usefixtures("permissive_umask")
def test_command_outputs_are_private(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)
    public = tmp_path / "out" / "pub.json"
    shomei(tmp_path, "keygen", "--out", str(tmp_path / "k.pem"), "--public-out", str(public))
    assert public.exists()
    assert open_to_others(tmp_path) == {}


@pytest.mark.usefixtures("permissive_umask")
def test_chain_json_is_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    ChainConfig(rpc_urls=("https://rpc.example/v3/API-KEY",), chain_id=11155111).save(data)
    assert modes(data) == {".": 0o700, "chain.json": 0o600}
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


@pytest.mark.usefixtures("permissive_umask")
def test_a_loose_data_directory_is_tightened_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_issuer(data)
    shomei(data, "issuer", "migrate")
    # As an older release (or cp, or tar) left it: readable by every local user.
    (tmp_path / "outside").mkdir()
    outside = tmp_path / "outside" / "file.txt"
    outside.write_text("not Shomei's\n")
    os.chmod(outside, 0o644)
    (data / "demo").symlink_to(tmp_path / "outside")
    os.chmod(data, 0o755)
    for path in data.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert open_to_others(data)

    run = shomei(data, "issuer", "migrate")

    assert open_to_others(data) == {}
    assert modes(data)["issuer"] == 0o700
    notices = [line for line in run.stderr.splitlines() if "tightened" in line]
    assert len(notices) == 1 and str(data) in notices[0]
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644, "a link is not followed"
    quiet = shomei(data, "issuer", "migrate")
    assert "tightened" not in quiet.stderr


def test_tighten_changes_only_what_shomei_keeps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "issuer").mkdir(parents=True)
    (data / "issuer" / "signing-key.pem").write_text("x")
    (data / "shomei.db").write_text("x")
    (data / "notes.txt").write_text("someone else's")
    for path, mode in [
        (data, 0o755),
        (data / "issuer", 0o755),
        (data / "issuer" / "signing-key.pem", 0o640),
        (data / "shomei.db", 0o644),
        (data / "notes.txt", 0o644),
    ]:
        os.chmod(path, mode)
    assert files.tighten(data) == [
        data,
        data / "issuer",
        data / "issuer" / "signing-key.pem",
        data / "shomei.db",
    ]
    assert modes(data) == {
        ".": 0o700,
        "issuer": 0o700,
        "issuer/signing-key.pem": 0o600,
        "shomei.db": 0o600,
        "notes.txt": 0o644,  # not Shomei's
    }
    assert files.tighten(data) == []
    assert len([r for r in caplog.records if "tightened" in r.getMessage()]) == 1


def test_a_directory_without_shomei_files_is_left_alone(tmp_path: Path) -> None:
    """A data directory set to a shared place by mistake (a home, /srv) is not changed."""
    shared = tmp_path / "shared"
    (shared / "project").mkdir(parents=True)
    (shared / "project" / "a.txt").write_text("x")
    os.chmod(shared / "project" / "a.txt", 0o644)  # whatever umask an app factory left
    os.chmod(shared, 0o755)
    assert files.tighten(shared) == []
    assert data_dir(shared) == shared
    assert modes(shared)["."] == 0o755 and modes(shared)["project/a.txt"] & 0o044
    assert data_dir(tmp_path / "missing") == tmp_path / "missing"
    assert not (tmp_path / "missing").exists(), "resolving a data directory creates nothing"
