"""Security: no code runs from data, uploads are bounded, nothing a user sends becomes HTML.

Static checks read the source of core/ and dashboard/ (Python's ast, not regexes, where it
matters); behavioural checks hand the loaders a hostile file. Dependencies must be pinned.
"""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("core", "dashboard") for p in (ROOT / folder).rglob("*.py"))
# Modules that deserialise Python objects (and so can run code) from bytes.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
# Where raw HTML is allowed, and why each is safe. A new place must be reviewed and added here.
HTML_ALLOWED = {
    "dashboard/Home.py": "one fixed CSS rule for every page (ui.PAGE_CSS: rows of pills wrap)",
    "dashboard/views/inside.py": "model colours, titles and numbers; a fixed CSS rule (PIXELATED)",
    "dashboard/views/draw.py": "fixed CSS (charts.BARS_CSS, charts.ANSWERS_CSS) and one fixed script (SEND_ON_PEN_LIFT, with "
                               "the names of Streamlit's own module files); the bars (model colours, escaped, and "
                               "numbers) and 28x28 PNGs the app makes; no text a visitor types",
    "dashboard/views/train_a_model.py": "a session model's colour and its label, which the app makes up "
                                     "('Your NumPy ANN #2'); no text a visitor types",
}


def tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def calls(node: ast.AST):
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            yield n


def dotted(func: ast.AST) -> str:
    """``keras.models.load_model`` for the call's function, as far as it is a plain dotted name."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_sources_found():
    assert len(SOURCES) > 10 and any(rel(p).startswith("dashboard/") for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_no_code_from_data(path):
    """No pickle-like module, no allow_pickle=True, no eval/exec, no shell, np.load always refuses pickles,
    Keras loads in safe mode and unsafe deserialisation is never switched on."""
    source = path.read_text()
    assert not re.search(r"allow_pickle\s*=\s*True", source)
    assert "enable_unsafe_deserialization" not in source
    for n in ast.walk(tree(path)):
        if isinstance(n, ast.Import):
            assert not {a.name.split(".")[0] for a in n.names} & UNSAFE_MODULES, ast.unparse(n)
        elif isinstance(n, ast.ImportFrom):
            assert (n.module or "").split(".")[0] not in UNSAFE_MODULES, ast.unparse(n)
            if (n.module or "").startswith("keras"):  # Keras loads must be spelt keras.models.load_model(...)
                assert "load_model" not in {a.name for a in n.names}, ast.unparse(n)
    for call in calls(tree(path)):
        name = dotted(call.func)
        where = f"{rel(path)}:{call.lineno}: {ast.unparse(call)[:120]}"
        assert name not in ("eval", "exec", "compile", "__import__", "os.system", "os.popen"), where
        if name.split(".")[-1] in ("run", "Popen", "call", "check_call", "check_output"):
            shell = keyword(call, "shell")
            assert shell is None or (isinstance(shell, ast.Constant) and shell.value is False), where
        if name in ("np.load", "numpy.load"):
            value = keyword(call, "allow_pickle")
            assert isinstance(value, ast.Constant) and value.value is False, where
        if name.endswith(("models.load_model", "saving.load_model")):
            value = keyword(call, "safe_mode")
            assert isinstance(value, ast.Constant) and value.value is True, where
        if name in ("pd.read_pickle", "pandas.read_pickle", "torch.load"):
            pytest.fail(where)


def test_keras_is_loaded_in_safe_mode_somewhere():
    """The one place Keras files are read says safe_mode=True (a rename must not lose it)."""
    found = [
        (rel(p), c.lineno) for p in SOURCES for c in calls(tree(p))
        if dotted(c.func).endswith("models.load_model")
        and isinstance(keyword(c, "safe_mode"), ast.Constant) and keyword(c, "safe_mode").value is True
    ]
    assert found and {f for f, _ in found} == {"core/models/keras_base.py"}, found


def test_a_keras_file_with_code_in_it_is_refused(tiny_artifacts, tmp_path):
    """A .keras archive whose Lambda layer carries Python bytecode: safe mode refuses it, and the
    loader says which file, instead of running the code."""
    import keras

    from core import ArtifactError, load_model

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    marker = tmp_path / "ran"
    evil = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Lambda(lambda x, path: x * 0 + float(open(path, "w").close() is None),
                            arguments={"path": str(marker)}),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    path = folder / "keras_mlp" / "model.keras"
    marker.unlink(missing_ok=True)
    evil.save(path)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once, here; loading must not
    with pytest.raises(ArtifactError) as e:
        load_model("keras_mlp", folder)
    assert str(path) in str(e.value)
    assert not marker.exists(), "loading the file ran code from it"


def test_an_npz_with_a_pickled_object_is_refused(tiny_artifacts, tmp_path):
    """An .npz whose array is an object array (a pickle inside): refused, named, never unpickled."""
    from core import ArtifactError, artifacts, load_model

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    hostile = np.array([{"not": "numbers"}], dtype=object)
    weights = folder / "numpy_mlp" / "weights.npz"
    np.savez(weights, W1=hostile, b1=hostile, W2=hostile, b2=hostile)
    with pytest.raises(ArtifactError) as e:
        load_model("numpy_mlp", folder)
    assert str(weights) in str(e.value)
    assert "allow_pickle" not in str(e.value)  # the app must not advise loading it unsafely
    predictions = folder / "lenet" / "predictions.npz"
    np.savez(predictions, probs=hostile, pred=hostile, label=hostile)
    with pytest.raises(ArtifactError) as e:
        artifacts.read("predictions", "lenet", folder)
    assert str(predictions) in str(e.value) and "allow_pickle" not in str(e.value)


def test_raw_html_only_where_reviewed():
    """``unsafe_allow_html=True``, ``st.html`` and ``components.html`` appear only in reviewed files."""
    found = {}
    for path in SOURCES:
        for call in calls(tree(path)):
            value = keyword(call, "unsafe_allow_html")
            raw = value is not None and not (isinstance(value, ast.Constant) and value.value is False)
            if raw or dotted(call.func) in ("st.html", "components.html", "st.components.v1.html"):
                found.setdefault(rel(path), []).append(call.lineno)
    unexpected = {f: lines for f, lines in found.items() if f not in HTML_ALLOWED}
    assert not unexpected, f"raw HTML in unreviewed places: {unexpected}"


def test_uploads_are_bounded_by_content_and_size():
    """The upload limit is the same in Streamlit's config and in read_image, and the Draw page's uploader
    passes the bytes to read_image (which decides by content) rather than trusting the extension."""
    from core.preprocess import MAX_PIXELS, MAX_UPLOAD_BYTES

    config = tomllib.loads((ROOT / "dashboard" / ".streamlit" / "config.toml").read_text())  # read from any folder
    server = config.get("server", {})
    assert server["maxUploadSize"] * 2**20 <= MAX_UPLOAD_BYTES
    assert server.get("enableXsrfProtection", True) and server.get("enableCORS", True)
    assert MAX_PIXELS <= 50_000_000
    draw = (ROOT / "dashboard" / "views" / "draw.py").read_text()
    assert "file_uploader" in draw and "predict_image" in draw and "max_upload_size" in draw


def test_dependencies_are_pinned():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r "):
                continue
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+(\s*;.+)?", line), f"{name}: {line!r}"
