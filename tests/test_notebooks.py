"""notebooks/explore.ipynb under papermill, and the hygiene of every notebook.

The explore notebook is executed with real parameters against Knot on
loopback; what the tool showed is read back from the widget state papermill
stores in the executed notebook. Every notebook in notebooks/ must be
committed without outputs or execution counts and must pass ruff.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from cxone_audit.regions import spf_ips

from .conftest import PROJECT

NOTEBOOKS = sorted((PROJECT / "notebooks").glob("*.ipynb"))
EXPLORE = PROJECT / "notebooks" / "explore.ipynb"
REGION = "UK1"


@pytest.fixture(scope="module")
def zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ips = spf_ips(REGION)
    path = tmp_path_factory.mktemp("nb") / "explore.zone"
    path.write_text(
        "$ORIGIN .\n$TTL 300\n"
        ". 86400 IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300\n"
        ". 86400 IN NS ns.test.\n"
        "ns.test. IN A 127.0.0.1\n"
        f'full.example. IN TXT "v=spf1 ip4:{" ip4:".join(ips)} -all"\n'
        f'part.example. IN TXT "v=spf1 ip4:{ips[0]} ~all"\n',
        encoding="utf-8",
    )
    return path


def execute(tmp_path: Path, **parameters: str) -> nbformat.NotebookNode:
    import papermill

    env = {"PYTHONPATH": os.pathsep.join(
        [str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return papermill.execute_notebook(
            str(EXPLORE), str(tmp_path / "explore.out.ipynb"),
            parameters=parameters, cwd=str(tmp_path), progress_bar=False,
            kernel_name="python3",
        )
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def widget_values(notebook: nbformat.NotebookNode) -> list[str]:
    """The ``value`` of every widget the executed notebook stored."""
    state: dict[str, Any] = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [str(model["state"].get("value", ""))
            for model in state.values()]


def test_explore_runs_under_papermill_against_knot(knot_for, zone, tmp_path):
    host, port = knot_for(zone)
    notebook = execute(tmp_path, region=REGION,
                       domains="full.example part.example nospf.example",
                       nameservers=f"{host}:{port}")

    summary = notebook.cells[-1].outputs[0]["data"]["text/plain"]
    lines = {line.split()[2]: line for line in summary.splitlines()[1:4]}
    assert "authorised" in lines["full.example"].split()
    assert "partly-authorised" in lines["part.example"].split()
    assert "no-spf" in lines["nospf.example"].split()

    values = widget_values(notebook)
    table = next(v for v in values if 'class="cxa-table"' in v
                 and "part.example" in v)
    assert ">partly-authorised</span>" in table
    assert any("3 rows audited" in v for v in values)


def test_explore_shows_a_bad_region_as_a_message(zone, tmp_path):
    notebook = execute(tmp_path, region="Atlantis", domains="full.example",
                       zone_file=str(zone))

    errors = [o for cell in notebook.cells for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    values = widget_values(notebook)
    assert any("cxa-error" in v and "choose a region" in v for v in values)


def test_explore_has_a_parameters_cell():
    notebook = nbformat.read(EXPLORE, as_version=4)
    tagged = [c for c in notebook.cells
              if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for name in ("region", "domains", "nameservers", "zone_file"):
        assert f"{name} = " in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs"
            assert cell.execution_count is None, (
                f"{path.name}: a cell has an execution count")
    assert "widgets" not in notebook.metadata, (
        f"{path.name}: widget state is stored")


def test_notebooks_pass_ruff():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    assert NOTEBOOKS
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache",
         *map(str, NOTEBOOKS)],
        cwd=PROJECT, capture_output=True, text=True, check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
