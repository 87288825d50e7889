"""tools/ (benchmark, load test, screenshots, browser toolkit) is for developers only: nothing under
core/ or dashboard/ may import it, so the app and the library never need Playwright or the tools."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path):
    """Every absolute module name a Python file imports, at any depth (inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_core_and_dashboard_never_import_tools():
    files = [f for folder in ("core", "dashboard") for f in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 10
    offenders = [f"{f.relative_to(ROOT)}: {name}" for f in files for name in imported_modules(f)
                 if name == "tools" or name.startswith("tools.")]
    assert not offenders, offenders


def test_the_check_sees_every_form_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import tools.browser\nfrom tools import bench\ndef f():\n    from tools.load import run\n"
                      "import toolsmith\nfrom .tools import x\n")
    assert sorted(imported_modules(source)) == ["tools", "tools.browser", "tools.load", "toolsmith"]
