"""The three floors: core is the library and reaches up into nothing; the dashboard is the app and
uses no tools; tools sit apart. Checked on the source (every import statement) and at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "core": ("streamlit", "playwright", "dashboard", "tools", "streamlit_drawable_canvas", "plotly"),
    "dashboard": ("tools", "playwright"),
    "deploy": ("core", "dashboard", "tools", "streamlit", "playwright"),  # runs the app, never imports it
}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("floor", list(FORBIDDEN))
def test_no_import_reaches_up(floor):
    files = sorted((ROOT / floor).rglob("*.py"))
    assert files
    bad = {str(p.relative_to(ROOT)): sorted(imported(p) & set(FORBIDDEN[floor])) for p in files}
    assert not {k: v for k, v in bad.items() if v}


def test_importing_all_of_core_loads_no_ui():
    """At run time too: every core module imported, and not one of Streamlit, Playwright or Plotly came along."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in sorted((ROOT / "core").rglob("*.py"))]
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'playwright', 'plotly', "
            "'dashboard', 'tools')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
