"""Packaging: dependency lists, the built wheel, the direction of imports.

* ``environment.yml`` lists the same packages as ``pyproject.toml``.
* A wheel built from the tree holds the region table and the report
  notebook, and works from anywhere once installed.
* The layers of DESIGN: DNS I/O <- interpretation <- orchestration <-
  presentation. Imports only point down, and only the resolver touches the
  network.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .conftest import PROJECT

PACKAGE = PROJECT / "cxone_audit"

#: The layer of each module; an import may not point to a higher number.
LAYERS = {
    "__init__": 0, "errors": 0, "resolver": 0,
    "regions": 1, "spf": 1, "inputs": 1, "dmarc": 1, "mx": 1, "ses": 1,
    "allowlist": 1, "findings": 1, "proposal": 1,
    "audit": 2, "batch": 2,
    "outputs": 3, "report": 3, "ui": 3, "cli": 3,
}
INTERPRETATION = [m for m, layer in LAYERS.items() if layer == 1]
PRESENTATION = {"cli", "report", "ui", "batch"}

#: Modules that open connections; only the DNS I/O layer may use them.
NETWORK = ("socket", "ssl", "http", "urllib.request", "requests", "httpx",
           "aiohttp", "smtplib", "dns.query", "dns.resolver",
           "dns.asyncresolver", "dns.nameserver")


# --- dependency lists ------------------------------------------------------


def _pyproject() -> dict:
    with (PROJECT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _pyproject_requirements() -> dict[str, Requirement]:
    project = _pyproject()["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        texts += extra
    return {canonicalize_name(Requirement(t).name): Requirement(t)
            for t in texts}


def _environment_requirements() -> dict[str, Requirement]:
    with (PROJECT / "environment.yml").open(encoding="utf-8") as handle:
        environment = yaml.safe_load(handle)
    pip: list[str] = []
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):
            pip += entry.get("pip", [])
    # "-e ." installs the kit itself; it is not a dependency.
    return {canonicalize_name(Requirement(t).name): Requirement(t)
            for t in pip if not t.startswith("-")}


def test_environment_lists_the_pyproject_packages() -> None:
    wanted = _pyproject_requirements()
    listed = _environment_requirements()

    assert sorted(set(wanted) - set(listed)) == [], "missing in environment.yml"
    assert sorted(set(listed) - set(wanted)) == [], "missing in pyproject.toml"


def test_environment_has_the_same_version_ranges() -> None:
    wanted = _pyproject_requirements()
    listed = _environment_requirements()

    differing = {name: (str(wanted[name].specifier), str(r.specifier))
                 for name, r in listed.items()
                 if name in wanted and r.specifier != wanted[name].specifier}
    assert differing == {}


def test_environment_python_matches_requires_python() -> None:
    with (PROJECT / "environment.yml").open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle)["dependencies"]
    pythons = [e for e in entries if isinstance(e, str)
               and e.startswith("python")]

    assert pythons == ["python" + _pyproject()["project"]["requires-python"]]


# --- the wheel -------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(PROJECT), "--no-deps",
         "--quiet", "--wheel-dir", str(out)],
        check=True, timeout=300,
    )
    (built,) = out.glob("cxone_audit-*.whl")
    return built


def test_wheel_ships_the_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        table = archive.read("cxone_audit/data/regions.csv")

    assert "cxone_audit/notebooks/batch_report.ipynb" in names
    assert "cxone_audit/py.typed" in names
    assert table == (PACKAGE / "data" / "regions.csv").read_bytes()
    assert not [n for n in names if n.startswith(("tests/", "data/"))]


def test_wheel_declares_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (points,) = [n for n in archive.namelist()
                     if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(points).decode()

    assert "cxone-audit = cxone_audit.cli:main" in text


def test_installed_wheel_reads_its_table_anywhere(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
         "--target", str(target), str(wheel)],
        check=True, timeout=300,
    )
    script = (
        "import cxone_audit, cxone_audit.regions as r; "
        "print(cxone_audit.__file__); print(len(r.load_regions()))"
    )

    # Run from elsewhere, the unpacked wheel first on the path.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True,
        cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONPATH": str(target)},
    )

    assert done.returncode == 0, done.stderr
    location, rows = done.stdout.split()
    assert Path(location).is_relative_to(target)
    assert int(rows) == sum(1 for _ in (PACKAGE / "data" / "regions.csv")
                            .open(encoding="utf-8")) - 1


# --- import direction ---------------------------------------------------------


def _modules() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PACKAGE.glob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, as absolute dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_from_import(node))
    return found


def _from_import(node: ast.ImportFrom) -> set[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        # The kit is one flat package: "." is cxone_audit.
        base = "cxone_audit" + (f".{node.module}" if node.module else "")
    if node.module is None:
        return {f"{base}.{alias.name}" for alias in node.names}
    return {base}


def _kit_imports(path: Path) -> set[str]:
    kit = set()
    for name in _imports(path):
        if name == "cxone_audit" or name.startswith("cxone_audit."):
            module = name.removeprefix("cxone_audit").lstrip(".")
            module = module.split(".")[0] or "__init__"
            kit.add(module if module in _modules() else "__init__")
    return kit


def test_every_module_has_a_layer() -> None:
    unknown = sorted(set(_modules()) - set(LAYERS))

    assert unknown == [], "add the new modules to LAYERS in this file"


def test_resolver_imports_only_errors() -> None:
    assert _kit_imports(PACKAGE / "resolver.py") <= {"errors"}


@pytest.mark.parametrize("module", INTERPRETATION)
def test_interpretation_never_imports_presentation(module: str) -> None:
    path = PACKAGE / f"{module}.py"
    if not path.exists():
        pytest.skip(f"{module}.py not written yet")

    assert _kit_imports(path) & PRESENTATION == set()


def test_imports_only_point_down() -> None:
    upward = [
        (module, imported)
        for module, path in _modules().items() if module in LAYERS
        for imported in _kit_imports(path)
        if LAYERS.get(imported, 0) > LAYERS[module]
    ]

    assert upward == []


def test_only_the_resolver_opens_connections() -> None:
    offenders = [
        (module, name)
        for module, path in _modules().items() if module != "resolver"
        for name in _imports(path)
        if any(name == n or name.startswith(n + ".") for n in NETWORK)
    ]

    assert offenders == []


def test_import_checker_sees_relative_and_local_imports(
    tmp_path: Path,
) -> None:
    # Guard for the checks above: they must see every form of import.
    path = tmp_path / "probe.py"
    path.write_text(
        "from . import errors\n"
        "from .batch import audit_rows\n"
        "def f():\n"
        "    from .cli import main\n"
        "    import socket\n",
        encoding="utf-8",
    )

    assert {"cxone_audit.errors", "cxone_audit.batch", "cxone_audit.cli",
            "socket"} <= _imports(path)
    assert _kit_imports(path) == {"errors", "batch", "cli"}
