"""The saved drawings in the app, under Streamlit's AppTest: the Draw page's save box (confirm, correct,
undo, collections, limits, a database that fails) and the "Your digits" page with an empty, a small and
a 10,000-drawing collection. Each test has its own SQLite file in tmp_path, given by $DRAWINGS_DB_URL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import SPECS, drawings
from core.drawings import Store, engine_for

ROOT = Path(__file__).resolve().parent.parent
HOME = str(ROOT / "dashboard" / "Home.py")
TITLES = {name: spec.title for name, spec in SPECS.items()}

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.charts import read_answer_cards  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_caches")


@pytest.fixture
def app_artifacts(best_artifacts, monkeypatch):
    """The committed models when they are fully trained (no training needed), else the tiny ones."""
    folder, _ = best_artifacts
    monkeypatch.setenv("MNIST_ARTIFACTS", str(folder))
    return Path(folder)


@pytest.fixture
def db(tmp_path, monkeypatch):
    """The app's database: a fresh SQLite file; returns a Store on it for the test to look inside."""
    url = f"sqlite:///{tmp_path / 'drawings.sqlite'}"
    monkeypatch.setenv(drawings.ENV_VAR, url)
    engine = engine_for(url)
    yield Store(engine)
    engine.dispose()


def digits(folder: Path, n: int = 4) -> list[tuple[bytes, int]]:
    """``n`` different test digits as uploads (dark ink on white, 168x168 PNG), with their labels."""
    with np.load(folder / "sample.npz") as f:
        images, labels = f["images"][:n], f["labels"][:n]
    out = []
    for image, label in zip(images, labels):
        buf = io.BytesIO()
        Image.fromarray(np.kron(255 - image, np.ones((6, 6), np.uint8))).save(buf, format="PNG")
        out.append((buf.getvalue(), int(label)))
    return out


def draw_page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/draw.py").run()
    at.segmented_control(key="source").set_value("Upload an image").run()
    return at


def upload(at: AppTest, png: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value(("digit.png", png, "image/png")).run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def answers_shown(at: AppTest) -> dict[str, int]:
    return {title: int(d) for title, d in read_answer_cards(*(h.proto.body for h in at.get("html"))).items()}


def buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def all_rows(store: Store, name: str = "default") -> list:
    return store.page(name, limit=200) if store.collections() else []


# --- saving on the Draw page ---------------------------------------------------------------------------------
def test_nothing_is_saved_until_the_visitor_clicks(app_artifacts, db):
    png, _ = digits(app_artifacts, 1)[0]
    at = upload(draw_page(), png)
    guess = next(b for b in buttons(at) if b.startswith("Yes, it's a "))
    assert "no personal data, no IP address, no free text" in texts(at.caption)
    assert "28×28 image the models saw" in texts(at.caption)
    at.run()  # reruns (as every stroke makes) save nothing either
    db.ensure_schema()
    assert db.collections() == [] and guess


def test_confirm_correct_and_undo(app_artifacts, db):
    (png1, _), (png2, _) = digits(app_artifacts, 2)
    at = upload(draw_page(), png1)
    shown = answers_shown(at)
    yes = next(b for b in at.button if b.label.startswith("Yes, it's a "))
    guess = int(yes.label.removeprefix("Yes, it's a "))
    yes.click().run()
    assert_clean(at)
    assert f"Saved as a **{guess}** in the collection **default**" in texts(at.success)
    [d] = all_rows(db)
    assert d.label == guess and d.collection == "default"
    assert {TITLES[m]: digit for m, (digit, _) in d.answers.items()} == shown  # each model's answer as shown
    assert not any(b.startswith("Yes, it's a") for b in buttons(at))  # this drawing is saved: no second save
    at.run()
    assert len(all_rows(db)) == 1

    at.button(key="drawings_undo").click().run()  # undo
    assert_clean(at)
    assert "Removed your last saved drawing" in texts(at.info)
    assert all_rows(db) == []
    assert "drawings_undo" not in [b.key for b in at.button]

    wrong = (guess + 1) % 10
    at.pills(key="drawings_fix").set_value(wrong).run()  # "No, it's a ..." then save
    assert db.collections() == []  # picking a digit is not saving
    at.button(key="drawings_fix_save").click().run()
    assert_clean(at)
    assert f"Saved as a **{wrong}**" in texts(at.success)
    assert [d.label for d in all_rows(db)] == [wrong]

    upload(at, png2)  # another drawing: the box asks again, with no correction picked
    assert at.pills(key="drawings_fix").value is None
    at.pills(key="drawings_fix").set_value(3).run()
    at.button(key="drawings_fix_save").click().run()
    assert sorted(d.label for d in all_rows(db)) == sorted([wrong, 3])
    assert "Remove all 2 of my saves" in buttons(at)
    at.button(key="drawings_undo_all").click().run()
    assert_clean(at)
    assert "Removed 2 of your saved drawings" in texts(at.info)
    assert all_rows(db) == [] and db.count("default") == 0


def test_undo_removes_only_this_sessions_saves(app_artifacts, db):
    png, _ = digits(app_artifacts, 1)[0]
    other = db.save("default", 1, np.zeros((28, 28), np.uint8), {"lenet": {"digit": 1, "probs": np.eye(10)[1]}})
    at = upload(draw_page(), png)
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    at.button(key="drawings_undo").click().run()
    assert [d.id for d in all_rows(db)] == [other.id]  # another visitor's drawing stays


def test_no_save_box_for_a_test_set_digit(app_artifacts, db):
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.switch_page("views/draw.py").run()
    at.segmented_control(key="source").set_value("Test-set example").run()
    assert_clean(at)
    assert answers_shown(at) and not any(b.startswith("Yes, it's a") for b in buttons(at))


def test_collection_from_the_address_and_typed(app_artifacts, db):
    (png1, _), (png2, _) = digits(app_artifacts, 2)
    at = upload(draw_page({"collection": "Room-12"}), png1)
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert "collection **room-12**" in texts(at.success)
    assert db.collections() == [("room-12", 1)]

    at.text_input(key="drawings_collection_box").input("bad name; DROP TABLE drawings").run()
    assert_clean(at)
    assert "not taken" in texts(at.warning) and "letters, digits and dashes" in texts(at.warning)
    at.text_input(key="drawings_collection_box").input("room-7").run()
    upload(at, png2)
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert db.collections() == [("room-12", 1), ("room-7", 1)]


@pytest.mark.parametrize("asked", ["<script>alert(1)</script>", "x' OR '1'='1", "a" * 40])
def test_a_bad_collection_in_the_address_is_refused(asked, app_artifacts, db):
    png, _ = digits(app_artifacts, 1)[0]
    at = upload(draw_page({"collection": asked}), png)
    assert "address's collection name was not taken" in texts(at.warning)
    assert asked not in texts(at.warning) + texts(at.markdown)  # never echoed back
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert db.collections() == [("default", 1)]


def test_saves_per_minute_per_session_and_per_collection(app_artifacts, db, monkeypatch):
    pngs = digits(app_artifacts, 4)
    monkeypatch.setattr(drawings, "SAVES_PER_MINUTE", 2)
    at = draw_page()
    for png, _ in pngs[:3]:
        upload(at, png)
        next(b for b in at.button if b.label.startswith("Yes")).click().run()
        assert_clean(at)
    assert "2 saves within a minute, the most allowed: wait" in texts(at.warning)
    assert db.count("default") == 2

    monkeypatch.setattr(drawings, "SAVES_PER_MINUTE", 100)
    monkeypatch.setattr(drawings, "SAVES_PER_SESSION", 1)
    at = upload(draw_page(), pngs[3][0])  # a new session: its own limits
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    upload(at, pngs[0][0])
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert "the most one visit may keep" in texts(at.warning)
    assert db.count("default") == 3

    monkeypatch.setattr(drawings, "SAVES_PER_SESSION", 100)
    monkeypatch.setattr(drawings, "ROWS_PER_COLLECTION", 3)
    at = upload(draw_page(), pngs[1][0])
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert "The collection default is full: it holds at most 3 drawings" in texts(at.warning)
    assert db.count("default") == 3


@pytest.mark.parametrize("fault, url, says", [
    ("read-only", "sqlite:///file:{tmp}/d.sqlite?mode=ro&uri=true", "read-only"),
    ("down", "sqlite:///{tmp}/no-such-folder/d.sqlite", "cannot be reached"),
    ("not a URL", "nonsense://x", "not set up correctly"),
    ("no driver", "mysql+nosuchdriver://u@127.0.0.1/x", "not set up correctly"),
])
def test_a_failing_database_leaves_drawing_and_predicting_working(fault, url, says, app_artifacts, tmp_path,
                                                                  monkeypatch):
    if fault == "read-only":  # a database with a drawing in it, opened read-only
        Store(engine_for(f"sqlite:///{tmp_path / 'd.sqlite'}")).save("default", 1, np.zeros((28, 28), np.uint8),
                                                                    {"lenet": {"digit": 1, "probs": np.eye(10)[1]}})
    monkeypatch.setenv(drawings.ENV_VAR, url.format(tmp=tmp_path))
    png, _ = digits(app_artifacts, 1)[0]
    at = upload(draw_page(), png)
    assert set(answers_shown(at)) == set(TITLES.values())  # the models answer whatever the database does
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert_clean(at)
    message = texts(at.error)
    assert "Not saved" in message and says in message and "Drawing and predicting still work" in message
    assert set(answers_shown(at)) == set(TITLES.values())

    at.switch_page("views/collection.py").run()
    assert_clean(at)
    if fault == "read-only":  # reading still works: the drawing saved before is there
        assert not at.error and next(m.value for m in at.metric if m.label == "Drawings") == "1"
    else:
        assert says in texts(at.error) and "cannot be shown now" in texts(at.error)


def test_database_locked_says_busy(app_artifacts, db, tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setattr(drawings, "WAIT_S", 0.2)
    db.ensure_schema()
    png, _ = digits(app_artifacts, 1)[0]
    at = upload(draw_page(), png)
    other = sqlite3.connect(tmp_path / "drawings.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        next(b for b in at.button if b.label.startswith("Yes")).click().run()
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert_clean(at)
    assert "busy" in texts(at.error) and db.count("default") == 0
    next(b for b in at.button if b.label.startswith("Yes")).click().run()  # free again: the same button works
    assert db.count("default") == 1


# --- the "Your digits" page ---------------------------------------------------------------------------------
def collection_page(name: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=120)
    if name:
        at.query_params["collection"] = name
    at.run()
    at.switch_page("views/collection.py").run()
    assert_clean(at)
    return at


def cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Labelled ")]


def test_collection_page_empty(app_artifacts, db):
    at = collection_page("room-1")
    assert not at.error
    assert "No drawings saved in **room-1** yet" in texts(at.info)
    assert not cards(at)


def small_collection(store: Store, name: str = "room-5") -> dict:
    """30 drawings with known answers: lenet right on all but 3, the MLPs wrong more often."""
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 10
    preds = {"lenet": labels.copy(), "numpy_mlp": labels.copy(), "keras_mlp": labels.copy()}
    preds["lenet"][[0, 11, 22]] = [6, 7, 8]
    preds["numpy_mlp"][[1, 2, 3, 4, 5]] = [0, 0, 0, 0, 0]
    preds["keras_mlp"][[1, 7]] = [7, 1]
    rows = []
    for i in range(30):
        given = {}
        for m, p in preds.items():
            probs = np.full(10, 0.02)
            probs[p[i]] = 0.82
            given[m] = {"digit": int(p[i]), "probs": probs}
        rows.append((int(labels[i]), rng.integers(0, 256, (28, 28), dtype=np.uint8), given))
    ids = store.save_many(name, rows).ids
    return {"labels": labels, "preds": preds, "ids": ids}


def test_collection_page_small(app_artifacts, db):
    from core.stats import wilson

    known = small_collection(db)
    db.save("other", 4, np.zeros((28, 28), np.uint8), {"lenet": {"digit": 4, "probs": np.eye(10)[4]}})
    at = collection_page("room-5")
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drawings"] == "30"
    table = at.dataframe[0].value
    for m, title in TITLES.items():
        right = int(np.sum(known["preds"][m] == known["labels"]))
        row = table[table["Model"] == title].iloc[0]
        assert row["Drawings"] == 30 and row["Right"] == right
        assert row["Accuracy"] == pytest.approx(100 * right / 30)
        lo, hi = wilson(right, 30)
        assert row["95% interval"] == f"{100 * lo:.1f} – {100 * hi:.1f}%"
        mnist = __import__("json").loads((app_artifacts / m / "metrics.json").read_text())["test_accuracy"]
        assert row["MNIST test"] == pytest.approx(100 * mnist)
        assert row["Gap"] == pytest.approx(100 * (right / 30 - mnist))
        assert metrics[title] == f"{right / 30:.1%}"
    per_digit = next(d.value for d in at.dataframe if "Digit" in d.value.columns)
    assert list(per_digit["Drawings"]) == [3] * 10
    assert per_digit.loc[0, "LeNet-5"] == pytest.approx(100 * 2 / 3)  # drawing 0, a 0, read as 6
    assert len(at.get("plotly_chart")) == 1 + 3  # per digit, three confusion matrices

    assert len(cards(at)) == 24  # first page, newest first
    assert cards(at)[0].startswith(f"**Labelled 9** · #{known['ids'][-1]}")
    assert all(c.count("✓") + c.count("✗") == 3 for c in cards(at))
    at.pills(key="drawings_misread").set_value(["lenet"]).run()
    assert_clean(at)
    assert [c.split("#")[1].split()[0] for c in cards(at)] == [str(known["ids"][i]) for i in (22, 11, 0)]
    assert all(":red[✗ LeNet-5" in c for c in cards(at))
    at.pills(key="drawings_misread").set_value([]).run()
    at.pills(key="drawings_digits").set_value([0]).run()
    assert len(cards(at)) == 3 and all(c.startswith("**Labelled 0**") for c in cards(at))
    assert "**3** of the 30 drawings" in texts(at.markdown)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["The collection as .npz", "Labels and answers as .csv"]


def test_collection_page_second_page_and_switching(app_artifacts, db):
    known = small_collection(db)
    at = collection_page("room-5")
    at.pagination(key="drawings_page").set_value(2).run()
    assert_clean(at)
    page2 = [int(c.split("#")[1].split()[0]) for c in cards(at)]
    assert page2 == sorted(known["ids"], reverse=True)[24:]
    db.save("room-9", 2, np.zeros((28, 28), np.uint8), {"lenet": {"digit": 2, "probs": np.eye(10)[2]}})
    at.run()  # the list of collections now has room-9
    at.selectbox(key="drawings_pick").set_value("room-9").run()
    assert_clean(at)
    assert next(m.value for m in at.metric if m.label == "Drawings") == "1"


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory, best_artifacts, mnist):
    """A 10,000-drawing collection: MNIST's test digits with the models' own test answers."""
    from tools.bench_drawings import fill, mnist_collection

    folder, _ = best_artifacts
    path = tmp_path_factory.mktemp("drawings") / "big.sqlite"
    engine = engine_for(f"sqlite:///{path}")
    rows = mnist_collection(10_000, folder)
    fill(Store(engine), rows, "big")
    engine.dispose()
    return f"sqlite:///{path}", rows


def test_collection_page_ten_thousand(app_artifacts, ten_thousand, monkeypatch):
    url, rows = ten_thousand
    monkeypatch.setenv(drawings.ENV_VAR, url)
    at = collection_page("big")
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Drawings"] == "10,000"
    labels = np.array([r[0] for r in rows])
    table = at.dataframe[0].value
    for m, title in TITLES.items():
        right = int(sum(r[2][m]["digit"] == r[0] for r in rows))
        row = table[table["Model"] == title].iloc[0]
        assert row["Right"] == right and row["Drawings"] == 10_000
    per_digit = next(d.value for d in at.dataframe if "Digit" in d.value.columns)
    assert list(per_digit["Drawings"]) == list(np.bincount(labels, minlength=10))
    assert len(cards(at)) == 24
    at.pills(key="drawings_misread").set_value(["lenet"]).run()
    assert_clean(at)
    wrong = sum(r[2]["lenet"]["digit"] != r[0] for r in rows)
    assert f"**{wrong:,}** of the 10,000 drawings" in texts(at.markdown)
    assert 0 < len(cards(at)) <= 24


# --- the other ways to name the database -------------------------------------------------------------------
def test_save_and_undo_on_postgresql(app_artifacts, postgres_url, monkeypatch):
    """The same flow through st.connection on a real PostgreSQL server, and the page reading it back."""
    monkeypatch.setenv(drawings.ENV_VAR, postgres_url)
    (png1, _), (png2, _) = digits(app_artifacts, 2)
    at = upload(draw_page({"collection": "room-pg"}), png1)
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert_clean(at)
    upload(at, png2)
    at.pills(key="drawings_fix").set_value(8).run()
    at.button(key="drawings_fix_save").click().run()
    engine = engine_for(postgres_url)
    store = Store(engine)
    assert store.count("room-pg") == 2 and store.page("room-pg")[0].label == 8
    at.button(key="drawings_undo").click().run()
    assert_clean(at)
    assert store.count("room-pg") == 1
    at.switch_page("views/collection.py").run()
    assert_clean(at)
    assert not at.error and next(m.value for m in at.metric if m.label == "Drawings") == "1"
    assert len(cards(at)) == 1
    engine.dispose()


def test_database_from_the_secrets(app_artifacts, tmp_path, monkeypatch):
    """No $DRAWINGS_DB_URL: [connections.drawings] in the secrets names the database."""
    import streamlit.connections.base_connection as base
    from streamlit.runtime.secrets import Secrets

    monkeypatch.delenv(drawings.ENV_VAR, raising=False)
    url = f"sqlite:///{tmp_path / 'from-secrets.sqlite'}"
    secrets = {"connections": {"drawings": {"url": url}}}
    # at.secrets reaches st.secrets but not st.connection, which reads Streamlit's own secrets object: both get them.
    loaded = Secrets()
    loaded._secrets = secrets
    monkeypatch.setattr(base, "secrets_singleton", loaded)
    png, _ = digits(app_artifacts, 1)[0]
    at = AppTest.from_file(HOME, default_timeout=120)
    at.secrets.update(secrets)
    at.run()
    at.switch_page("views/draw.py").run()
    at.segmented_control(key="source").set_value("Upload an image").run()
    upload(at, png)
    next(b for b in at.button if b.label.startswith("Yes")).click().run()
    assert_clean(at)
    assert not at.error, texts(at.error)
    engine = engine_for(url)
    assert Store(engine).count("default") == 1
    engine.dispose()


def test_your_digits_page_never_imports_tensorflow(best_artifacts, tmp_path):
    """Like every page but Draw: only aggregates and pictures, no models (a fresh interpreter, as AppTest
    runs in-process)."""
    import json
    import os
    import subprocess
    import sys

    folder, _ = best_artifacts
    url = f"sqlite:///{tmp_path / 'd.sqlite'}"
    Store(engine_for(url)).save("default", 1, np.zeros((28, 28), np.uint8),
                                {"lenet": {"digit": 1, "probs": np.eye(10)[1]}})
    script = f"""
import json, sys
sys.path[:0] = [{str(ROOT)!r}]
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({HOME!r}, default_timeout=120).run()
at.switch_page("views/collection.py").run()
assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
assert [m.value for m in at.metric if m.label == "Drawings"] == ["1"]
print(json.dumps(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
"""
    env = {**os.environ, "MNIST_ARTIFACTS": str(folder), drawings.ENV_VAR: url}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_drawings_benchmark_runs(best_artifacts):
    """``python -m tools.bench_drawings`` end to end on a small collection: every figure there and sane (no
    timing thresholds: timings belong to the benchmark's own report)."""
    from tools import bench_drawings

    folder, _ = best_artifacts
    r = bench_drawings.run(n=300, artifacts=folder, log=lambda s: None)
    assert r["page"]["problems"] == [] and r["page"]["cards"] == 24 and r["page"]["drawings_shown"] == "300"
    assert r["page"]["first_s"] > 0 and r["page"]["rerun_median_s"] > 0
    [c] = r["concurrent"]
    assert c["stored"] == c["saved"] == c["distinct_ids"] == c["distinct_images"] == c["summary_count"] == 100
    assert not c["errors"] and c["wall_s"] > 0
    assert "| Collection page, AppTest, first run |" in bench_drawings.format_table(r)
