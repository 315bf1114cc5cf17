"""Import boundaries of DESIGN.md §4, read from the source with ``ast``.

``credentials`` is the pure core: no Flask, no web3, nothing from the other packages.
The verifier never imports the issuer; the wallet imports neither. ``anchor/merkle.py``
is pure.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_PACKAGES = {"issuer", "verifier", "anchor", "wallet_demo", "shomei_cli", "edges"}
WEB = {"flask", "web3", "werkzeug", "eth_tester", "eth_account"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module a source file imports: absolute names, relative ones resolved,
    ``from x import y`` counted as both ``x`` and ``x.y``, and constant
    ``importlib.import_module(...)``/``__import__(...)`` calls."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level - 1 >= len(base):
                    found.add("<relative import above the top-level package>")
                    continue
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                found.add(str(arg.value))
    return found


def imports_of(path: Path) -> set[str]:
    return imported_modules(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def top(name: str) -> str:
    return name.split(".")[0]


def files_under(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


CREDENTIALS = files_under("credentials")
VERIFIER = files_under("verifier")
ANCHOR = files_under("anchor")
WALLET = files_under("wallet_demo")


def rel(paths: list[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in paths]


def test_the_packages_have_files():
    assert len(CREDENTIALS) >= 8, "credentials/ was not found"
    assert VERIFIER, "verifier/ was not found"
    assert (ROOT / "anchor" / "merkle.py").exists()


@pytest.mark.parametrize("path", CREDENTIALS, ids=rel(CREDENTIALS))
def test_credentials_is_the_pure_core(path: Path):
    bad = sorted(m for m in imports_of(path) if top(m) in WEB | APP_PACKAGES or m.startswith("<"))
    assert not bad, f"{path.name} imports {bad}: credentials/ must stay pure (DESIGN §4)"


@pytest.mark.parametrize("path", VERIFIER, ids=rel(VERIFIER))
def test_verifier_never_imports_the_issuer(path: Path):
    bad = sorted(m for m in imports_of(path) if top(m) == "issuer")
    assert not bad, f"{path.name} imports {bad}: the verifier never imports the issuer"


@pytest.mark.parametrize("path", ANCHOR, ids=rel(ANCHOR))
def test_anchor_imports_credentials_at_most(path: Path):
    bad = sorted(m for m in imports_of(path) if top(m) in {"issuer", "verifier", "wallet_demo"})
    assert not bad, f"{path.name} imports {bad}: anchor -> credentials at most"


@pytest.mark.parametrize("path", WALLET, ids=rel(WALLET))
def test_the_wallet_never_imports_the_issuer_or_the_verifier(path: Path):
    # The wallet server is another party: it shares the pure core, not the services.
    bad = sorted(m for m in imports_of(path) if top(m) in {"issuer", "verifier"})
    assert not bad, f"{path.name} imports {bad}: the wallet never imports issuer or verifier"


ISSUER_FEATURES = ("accounts", "audit", "certificates", "contracts", "keys", "oid4vci")
ISSUER_SERVICES = [
    path
    for feature in ISSUER_FEATURES
    for path in files_under(f"issuer/{feature}")
    if not path.stem.endswith("views") and path.stem != "cli"
]
#: The request-bound globals: a service gets its session, city and user as arguments.
REQUEST_GLOBALS = {"issuer.db", "issuer.city", "issuer.app"}


@pytest.mark.parametrize("path", ISSUER_SERVICES, ids=rel(ISSUER_SERVICES))
def test_the_issuers_services_know_no_request(path: Path):
    """A feature's models, services and forms import no Flask, no web3, not the app's
    session global or edges: only its ``*views.py`` modules (and ``cli.py``) do."""
    bad = sorted(
        m
        for m in imports_of(path)
        if top(m) in WEB
        or m in REQUEST_GLOBALS
        or m.startswith("issuer.web")
        or m.endswith("views")
    )
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_issuers_features_are_packages():
    assert len(ISSUER_SERVICES) >= 20
    flat = sorted(p.name for p in (ROOT / "issuer").glob("*.py"))
    assert flat == [
        "__init__.py",
        "app.py",
        "city.py",
        "cli.py",
        "config.py",
        "db.py",
        "models.py",
        "worker.py",
    ]


EDGES = files_under("edges")


@pytest.mark.parametrize("path", EDGES, ids=rel(EDGES))
def test_the_shared_edges_import_the_core_at_most(path: Path):
    """The apps' shared edges (headers, the JSON error document) know no app."""
    bad = sorted(m for m in imports_of(path) if top(m) in APP_PACKAGES - {"edges"} | {"web3"})
    assert not bad, f"{path.name} imports {bad}: edges -> credentials at most"


#: The verification procedure and what it reads: no web framework, no chain library.
VERIFIER_PURE = ["policy", "results", "documents", "agreements", "inputs", "display"]


@pytest.mark.parametrize("name", VERIFIER_PURE)
def test_the_verification_procedure_is_pure(name: str):
    path = ROOT / "verifier" / f"{name}.py"
    bad = sorted(m for m in imports_of(path) if top(m) in WEB | {"sqlalchemy"})
    assert not bad, f"verifier/{name}.py imports {bad}"


def test_merkle_is_pure():
    path = ROOT / "anchor" / "merkle.py"
    bad = sorted(m for m in imports_of(path) if top(m) in WEB)
    assert not bad, f"anchor/merkle.py imports {bad}"


# --------------------------------------------------------------------------- the checker


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import flask", "credentials.x", "flask"),
        ("from web3 import Web3", "credentials.x", "web3.Web3"),
        ("from .. import issuer", "credentials.doctypes.x", "credentials.issuer"),
        ("from ..errors import ShomeiError", "credentials.doctypes.x", "credentials.errors"),
        (
            "from ... import issuer",
            "credentials.doctypes.x",
            "<relative import above the top-level package>",
        ),
        ("from verifier import policy", "credentials.x", "verifier.policy"),
        ("import importlib\nimportlib.import_module('flask')", "credentials.x", "flask"),
        ("def f():\n    import web3.auto", "credentials.x", "web3.auto"),
    ],
    ids=[
        "import",
        "from",
        "relative-sibling",
        "relative-parent",
        "relative-escape",
        "from-app",
        "import_module",
        "function-local",
    ],
)
def test_checker_sees_every_kind_of_import(source: str, module: str, expected: str):
    assert expected in imported_modules(source, module)


def test_test_modules_have_unique_names():
    """The test folders are not packages (their helpers are imported by plain name), so
    two test files of one name in two folders would stop the whole run at collection."""
    seen: dict[str, Path] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a module name"
        seen[path.name] = path


# --------------------------------------------------------------------------- the graph
PRODUCT_PACKAGES = ("credentials", "anchor", "edges", "issuer", "verifier", "wallet_demo")


def product_modules() -> dict[str, Path]:
    """Every product module by name (the issuer's Alembic scripts are not imported)."""
    found = {
        module_name(p): p
        for package in PRODUCT_PACKAGES
        for p in files_under(package)
        if "migrations" not in p.parts
    }
    found.update({name: ROOT / f"{name}.py" for name in ("shomei_cli", "shomei_demo")})
    return found


def reachable(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def import_cycles() -> list[list[str]]:
    """The sets of two or more product modules that import each other (directly or
    not), counting every import: module level, inside functions, under TYPE_CHECKING."""
    modules = product_modules()
    graph = {m: [i for i in imports_of(p) if i in modules and i != m] for m, p in modules.items()}
    reach = {m: reachable(graph, m) for m in graph}
    cycles = {
        frozenset({m} | {w for w in reach[m] if m in reach[w]}) for m in graph if m in reach[m]
    }
    return sorted(sorted(c) for c in cycles)


def test_no_import_cycles():
    """anchor/chain.py is an interface its backends depend on; the verifier's shared
    HTTP helpers live outside its app module; the repair of batches needs the batcher
    only through a protocol."""
    cycles = import_cycles()
    assert not cycles, f"import cycles: {cycles}"


PACKAGE_INITS = sorted(
    p for package in PRODUCT_PACKAGES for p in (ROOT / package).rglob("__init__.py")
)


@pytest.mark.parametrize("path", PACKAGE_INITS, ids=rel(PACKAGE_INITS))
def test_every_package_names_its_public_face(path: Path):
    """``__all__`` lists the package's public names: what it re-exports, or, for a
    package whose face is its modules, those modules; each one exists and none is
    private."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    declared = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert declared, f"{path.relative_to(ROOT)} has no __all__"
    names = ast.literal_eval(declared[0])
    defined = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        defined.update(t.id for t in targets if isinstance(t, ast.Name))
    folder = path.parent
    for name in names:
        assert not name.startswith("_"), f"{path.relative_to(ROOT)} exports private {name}"
        exists = (
            name in defined
            or (folder / f"{name}.py").exists()
            or (folder / name / "__init__.py").exists()
        )
        assert exists, f"{path.relative_to(ROOT)} names {name}, which it does not have"


def test_no_private_module_is_used_from_another_package():
    """``pkg._x`` is private to ``pkg``: other packages use its public face (the core's
    encodings are ``credentials.encoding``, its JWS helpers ``credentials.jws``, the chain
    backends ``anchor.backends``)."""
    found = set()
    modules = product_modules()
    for name, path in modules.items():
        for imported in imports_of(path):
            parts = imported.split(".")
            private = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
            if private is None or private == 0:
                continue
            owner, module = ".".join(parts[:private]), ".".join(parts[: private + 1])
            if module not in modules or name == owner or name.startswith(owner + "."):
                continue  # a private *name* of a module, or a module of its own package
            found.add((top(name), module))
    assert not found, f"private modules used across packages: {sorted(found)}"


def test_sdjwt_issuer_holder_and_verifier_share_only_parsing():
    parts = {"issuer", "holder", "verifier"}
    for part in parts:
        path = ROOT / "credentials" / "sdjwt" / f"{part}.py"
        others = {f"credentials.sdjwt.{p}" for p in parts - {part}}
        bad = sorted(
            m for m in imports_of(path) if m.split(".")[:3] and ".".join(m.split(".")[:3]) in others
        )
        assert not bad, f"sdjwt/{part}.py imports {bad}: the parts share only _common"
