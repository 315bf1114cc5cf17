"""Deeply nested JSON bodies: a clear 400 from every app, never a crashed process.

web3 raises Python's recursion limit to 100,000 in every process that imports it, so
the standard library's recursive JSON parser would overflow the C stack (a segfault,
not a ``RecursionError``) on a 200 KB body of brackets. Each case runs in a fresh
process that imports web3 first, as ``shomei`` does, and must exit normally."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from credentials.encoding import MAX_DEPTH, loads_bounded

DEEP = "[" * 100_000 + "]" * 100_000

_SCRIPT = """
import sys, tempfile
import web3  # noqa: F401  (raises the recursion limit, as in every shomei process)
assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
body = "[" * {depth} + "]" * {depth}
{make}
client = app.test_client()
response = client.post({path!r}, data=body, headers={headers!r})
print(response.status_code)
"""

_APPS = {
    "verifier": (
        100_000,
        "from verifier.app import create_app\n"
        "from credentials.trust import TrustList\n"
        "from verifier.policy import Verifier\n"
        "app = create_app({'VERIFIER': Verifier(trust=TrustList.from_json("
        "{'issuers': {}})), 'TESTING': True})",
        "/api/verify",
        {"Content-Type": "application/json"},
    ),
    "wallet": (
        30_000,
        "from wallet_demo.app import create_app\napp = create_app()",
        "/api/encode",
        {"Content-Type": "application/json"},
    ),
    "issuer": (
        30_000,
        "from pathlib import Path\n"
        "from issuer.app import create_app\n"
        "from issuer.keys import service as keys\n"
        "d = tempfile.mkdtemp()\n"
        "keys.init(Path(d), keys.IssuerSettings(issuer_id='https://city.example', "
        "name='飯塚市', municipality_code='402052'), passphrase='p')\n"
        "app = create_app({'TESTING': True, 'DATA_DIR': d, 'KEY_PASSPHRASE': 'p', "
        "'DATABASE_URL': f'sqlite:///{d}/issuer.db'})",
        "/oid4vci/credential",
        {"Content-Type": "application/json", "Authorization": "Bearer x"},
    ),
}


@pytest.mark.parametrize("name", sorted(_APPS))
def test_deeply_nested_body_is_refused_without_a_crash(name: str) -> None:
    depth, make, path, headers = _APPS[name]  # the body fits the endpoint's size limit
    script = _SCRIPT.format(depth=depth, make=make, path=path, headers=headers)
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert 400 <= int(run.stdout.split()[-1]) < 500


def test_loads_bounded_refuses_depth_beyond_the_limit() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_bounded(ok) is not None
    assert loads_bounded('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    with pytest.raises(ValueError, match="deeper"):
        loads_bounded("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(ValueError):
        loads_bounded(DEEP)
    with pytest.raises(ValueError):
        loads_bounded('{"a": 1, "a": 2}')
