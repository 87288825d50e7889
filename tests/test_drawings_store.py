"""core.drawings against real databases: a SQLite file in tmp_path and a throwaway PostgreSQL server.

The PostgreSQL server is conftest's ``postgres_server``: Debian's, started with initdb and pg_ctl in a
temporary folder on a free local port. Without PostgreSQL its tests are skipped, except in CI (env CI set),
where that is a failure.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa

from core import drawings
from core.drawings import (
    BadDrawing,
    LimitReached,
    SessionQuota,
    Store,
    StoreUnavailable,
    engine_for,
)

MODELS = ("keras_mlp", "lenet", "numpy_mlp")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'drawings.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url):
    engine = engine_for(url)
    yield Store(engine)
    engine.dispose()


# --- drawings to save ----------------------------------------------------------------------------------
def probs_for(digit: int, rng, sure: float = 0.9) -> np.ndarray:
    p = rng.random(10) * (1 - sure) / 10
    p[digit] = 0
    p[digit] = 1 - p.sum()
    return p


def answers_for(digits: dict[str, int], rng) -> dict:
    return {m: {"digit": d, "probs": probs_for(d, rng)} for m, d in digits.items()}


def image_for(i: int) -> np.ndarray:
    """A distinct uint8 image per i (its first four pixels spell i)."""
    img = np.zeros((28, 28), np.uint8)
    img.flat[:4] = np.frombuffer(int(i).to_bytes(4, "little"), np.uint8)
    img[10:18, 12:16] = 255
    return img


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as c:
        out = {t: c.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in ("drawings", "answers")}
        out["sizes"] = c.execute(sa.text("SELECT COALESCE(SUM(size), 0) FROM collections")).scalar()
    return out


# --- saving and reading ------------------------------------------------------------------------------------
def test_save_read_back_exactly(store):
    rng = np.random.default_rng(0)
    x = rng.random((28, 28), dtype=np.float32)
    given = answers_for({"numpy_mlp": 3, "keras_mlp": 5, "lenet": 3}, rng)
    before = dt.datetime.now(dt.UTC)
    saved = store.save("Room-12", 3, x, given)
    assert saved.collection == "room-12" and saved.size == 1 and len(saved.ids) == 1
    [d] = store.page("room-12")
    assert d.id == saved.id and d.label == 3 and d.collection == "room-12"
    assert d.image.dtype == np.uint8 and d.image.shape == (28, 28)
    assert np.array_equal(d.image, np.round(x * 255).astype(np.uint8))  # the very pixels the models saw
    assert before - dt.timedelta(seconds=5) <= d.created <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    assert set(d.answers) == set(given)
    for m, (digit, probs) in d.answers.items():
        assert digit == given[m]["digit"]
        assert np.array_equal(probs, given[m]["probs"].astype(np.float32))
    assert d.misread_by() == ["keras_mlp"]
    assert store.collections() == [("room-12", 1)]


def test_stores_only_what_the_page_says(store):
    """The image, the digit, each model's answer and probabilities, the time, the collection: nothing else."""
    store.save("c", 1, image_for(1), answers_for({"lenet": 1}, np.random.default_rng(1)))
    inspector = sa.inspect(store.engine)
    columns = {t: sorted(c["name"] for c in inspector.get_columns(t)) for t in ("collections", "drawings", "answers")}
    assert columns == {"collections": ["created", "name", "size"],
                       "drawings": ["collection", "created", "id", "image", "label"],
                       "answers": ["digit", "drawing_id", "model", "probs"]}
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT length(image) FROM drawings")).scalar() == 784
        assert c.execute(sa.text("SELECT length(probs) FROM answers")).scalar() == 40


def test_summary_page_filters_and_delete(store):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 60)
    preds = {m: np.where(rng.random(60) < 0.8, labels, rng.integers(0, 10, 60)) for m in MODELS}
    rows = [(int(labels[i]), image_for(i), answers_for({m: int(preds[m][i]) for m in MODELS}, rng)) for i in range(60)]
    ids = store.save_many("class-a", rows).ids
    store.save("class-b", 4, image_for(99), answers_for({"lenet": 4}, rng))  # another collection stays apart

    s = store.summary("class-a")
    assert s.count == 60 and s.models == sorted(MODELS)
    assert np.array_equal(s.labels, np.bincount(labels, minlength=10))
    for m in MODELS:
        cm = np.zeros((10, 10), np.int64)
        np.add.at(cm, (labels, preds[m]), 1)
        assert np.array_equal(s.confusion[m], cm)
        assert s.correct(m) == int(np.sum(preds[m] == labels))
        assert s.accuracy(m) == pytest.approx(np.mean(preds[m] == labels))

    newest_first = store.page("class-a", limit=200)
    assert [d.id for d in newest_first] == sorted(ids, reverse=True)
    pages = [d.id for k in range(0, 60, 7) for d in store.page("class-a", offset=k, limit=7)]
    assert pages == sorted(ids, reverse=True)  # every drawing once, in order, across pages

    sevens = {i for i, lb in zip(ids, labels) if lb in (7, 1)}
    assert {d.id for d in store.page("class-a", digits=[7, 1], limit=200)} == sevens
    assert store.count("class-a", digits=[7, 1]) == len(sevens)
    misread = {i for k, i in enumerate(ids) if preds["lenet"][k] != labels[k] or preds["keras_mlp"][k] != labels[k]}
    assert {d.id for d in store.page("class-a", misread_by=["lenet", "keras_mlp"], limit=200)} == misread
    assert store.count("class-a", misread_by=["lenet", "keras_mlp"]) == len(misread)
    both = {i for k, i in enumerate(ids) if labels[k] == 3 and preds["numpy_mlp"][k] != 3}
    assert {d.id for d in store.page("class-a", digits=[3], misread_by=["numpy_mlp"], limit=200)} == both

    assert store.delete("class-a", ids[:5]) == 5
    assert store.delete("class-b", ids[5:10]) == 0  # not that collection's: nothing deleted
    assert store.delete("class-a", ids[:5]) == 0  # already gone
    assert store.count("class-a") == store.summary("class-a").count == 55
    assert table_counts(store.engine) == {"drawings": 56, "answers": 55 * 3 + 1, "sizes": 56}


def test_export_and_purge_commands(store, url, tmp_path, capsys):
    rng = np.random.default_rng(3)
    rows = [(i % 10, image_for(i), answers_for({m: (i + k) % 10 for k, m in enumerate(MODELS)}, rng))
            for i in range(25)]
    ids = store.save_many("room-12", rows).ids
    assert drawings.main(["--db", url, "export", "--collection", "room-12", "--out", str(tmp_path / "r.npz")]) == 0
    with np.load(tmp_path / "r.npz", allow_pickle=False) as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape == (25, 28, 28)
        assert np.array_equal(f["images"], np.stack([r[1] for r in rows]))
        assert list(f["labels"]) == [r[0] for r in rows]
        assert list(f["models"]) == sorted(MODELS)
        assert f["answers"].shape == (25, 3) and f["probs"].shape == (25, 3, 10)
        for j, m in enumerate(sorted(MODELS)):
            assert list(f["answers"][:, j]) == [r[2][m]["digit"] for r in rows]
        assert list(f["ids"]) == ids and str(f["collection"]) == "room-12"
    assert drawings.main(["--db", url, "export", "--collection", "room-12", "--out", str(tmp_path / "r.csv")]) == 0
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].split(",")[:7] == ["id", "created", "collection", "label", *sorted(MODELS)]
    assert len(lines) == 26 and lines[1].split(",")[3] == "0"
    assert drawings.main(["--db", url, "export", "--collection", "room-12", "--out", str(tmp_path / "r.txt")]) == 2
    assert drawings.main(["--db", url, "list"]) == 0
    assert "room-12\t25" in capsys.readouterr().out
    assert drawings.main(["--db", url, "purge", "--collection", "room-12"]) == 0
    assert "25 drawings of room-12 deleted" in capsys.readouterr().out
    assert store.collections() == [] and table_counts(store.engine) == {"drawings": 0, "answers": 0, "sizes": 0}


# --- twenty sessions at once ---------------------------------------------------------------------------------
def save_concurrently(store, sessions: int, each: int, collection: str = "class") -> tuple[list, list, float]:
    """``sessions`` threads, each its own session saving ``each`` drawings, all released at once."""
    start = threading.Barrier(sessions)
    saved, refused, errors = [], [], []

    def session(s: int):
        rng = np.random.default_rng(s)
        start.wait()
        for k in range(each):
            i = s * 1000 + k
            try:
                saved.append((i, store.save(collection, i % 10, image_for(i), answers_for({m: i % 10 for m in MODELS}, rng)).id))
            except LimitReached:
                refused.append(i)
            except Exception as e:
                errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(s,)) for s in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    return saved, refused, time.perf_counter() - t0


def test_twenty_sessions_saving_at_once(store, request):
    store.ensure_schema()
    saved, refused, seconds = save_concurrently(store, 20, 5)
    print(f"{request.node.callspec.params['url']}: 100 saves from 20 threads in {seconds:.2f} s")
    assert not refused and len(saved) == 100
    assert len({i for _, i in saved}) == 100  # every save got its own id
    stored = {int(np.frombuffer(d.image.flat[:4].tobytes(), "<u4")[0]): d for d in store.page("class", limit=100)}
    assert sorted(stored) == sorted(i for i, _ in saved)  # each stored exactly once
    assert all(stored[i].id == id_ and stored[i].label == i % 10 for i, id_ in saved)
    assert store.count("class") == store.summary("class").count == 100
    assert table_counts(store.engine) == {"drawings": 100, "answers": 300, "sizes": 100}


def test_limit_on_the_whole_database(store, monkeypatch):
    monkeypatch.setattr(drawings, "ROWS_IN_ALL", 3)
    rng = np.random.default_rng(8)
    for name in ("a", "b", "c"):
        store.save(name, 1, image_for(1), answers_for({"lenet": 1}, rng))
    with pytest.raises(LimitReached, match="at most 3 drawings in all"):
        store.save("d", 1, image_for(1), answers_for({"lenet": 1}, rng))
    assert table_counts(store.engine) == {"drawings": 3, "answers": 3, "sizes": 3}
    assert [n for n, _ in store.collections()] == ["a", "b", "c"]


def test_collection_limit_is_exact_under_concurrency(url):
    engine = engine_for(url)
    try:
        store = Store(engine, rows_per_collection=30)
        saved, refused, _ = save_concurrently(store, 20, 3)
        assert len(saved) == 30 and len(refused) == 30
        assert table_counts(engine) == {"drawings": 30, "answers": 90, "sizes": 30}
        with pytest.raises(LimitReached, match="full: it holds at most 30 drawings"):
            store.save("class", 1, image_for(1), answers_for({"lenet": 1}, np.random.default_rng(0)))
        store.save("another", 1, image_for(1), answers_for({"lenet": 1}, np.random.default_rng(0)))  # others go on
    finally:
        engine.dispose()


# --- bad input: refused, nothing stored -------------------------------------------------------------------
GOOD = {"lenet": {"digit": 7, "probs": np.eye(10)[7] * 0.9 + 0.01}}
IMAGE = np.zeros((28, 28), np.float32)
BAD = {
    "label 10": ("c", 10, IMAGE, GOOD, "from 0 to 9"),
    "label -1": ("c", -1, IMAGE, GOOD, "from 0 to 9"),
    "label text": ("c", "7", IMAGE, GOOD, "whole number"),
    "label bool": ("c", True, IMAGE, GOOD, "whole number"),
    "label float": ("c", 7.0, IMAGE, GOOD, "whole number"),
    "image 28x29": ("c", 7, np.zeros((28, 29), np.float32), GOOD, "28x28"),
    "image 784 flat": ("c", 7, np.zeros(784, np.uint8), GOOD, "28x28"),
    "image RGB": ("c", 7, np.zeros((28, 28, 3), np.uint8), GOOD, "28x28"),
    "image float64": ("c", 7, np.zeros((28, 28)), GOOD, "uint8 or float32"),
    "image int64": ("c", 7, np.zeros((28, 28), np.int64), GOOD, "uint8 or float32"),
    "image list": ("c", 7, [[0] * 28] * 28, GOOD, "28x28 array"),
    "image above 1": ("c", 7, np.full((28, 28), 2, np.float32), GOOD, "between 0 and 1"),
    "image NaN": ("c", 7, np.full((28, 28), np.nan, np.float32), GOOD, "between 0 and 1"),
    "SQL in the name": ("c'; DROP TABLE drawings; --", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "SQL quote": ("room' OR '1'='1", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "HTML in the name": ("<script>alert(1)</script>", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "spaces": ("room 12", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "empty name": ("", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "dash first": ("-room", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "not ASCII": ("sală-12", 7, IMAGE, GOOD, "letters, digits and dashes"),
    "name not text": (12, 7, IMAGE, GOOD, "must be text"),
    "no answers": ("c", 7, IMAGE, {}, "At least one model"),
    "answer not argmax": ("c", 7, IMAGE, {"lenet": {"digit": 3, "probs": GOOD["lenet"]["probs"]}}, "not the most probable"),
    "probs not summing to 1": ("c", 7, IMAGE, {"lenet": {"digit": 7, "probs": np.eye(10)[7] * 0.5}}, "add up to 1"),
    "model name with SQL": ("c", 7, IMAGE, {"x'; --": GOOD["lenet"]}, "short identifier"),
    # oversized requests
    "huge image": ("c", 7, np.zeros((2800, 2800), np.float32), GOOD, "28x28"),
    "huge name": ("r" * 10_000, 7, IMAGE, GOOD, "at most 32"),
    "33 characters": ("r" * 33, 7, IMAGE, GOOD, "at most 32"),
    "too many models": ("c", 7, IMAGE, {f"m{i}": GOOD["lenet"] for i in range(1000)}, "At most 8"),
    "huge probabilities": ("c", 7, IMAGE, {"lenet": {"digit": 7, "probs": [0.1] * 1_000_000}}, "ten probabilities"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_refused_and_nothing_stored(case, tmp_path):
    store = Store(engine_for(f"sqlite:///{tmp_path / 'd.sqlite'}"))
    store.ensure_schema()
    collection, label, image, given, message = BAD[case]
    with pytest.raises(BadDrawing, match=message):
        store.save(collection, label, image, given)
    assert table_counts(store.engine) == {"drawings": 0, "answers": 0, "sizes": 0}
    assert store.collections() == []


def test_bad_input_refused_on_postgres_too(postgres_url):
    store = Store(engine_for(postgres_url))
    store.ensure_schema()
    for case in ("label 10", "image float64", "SQL in the name", "HTML in the name", "huge image"):
        collection, label, image, given, message = BAD[case]
        with pytest.raises(BadDrawing, match=message):
            store.save(collection, label, image, given)
    assert table_counts(store.engine) == {"drawings": 0, "answers": 0, "sizes": 0}
    store.engine.dispose()


def test_a_batch_with_one_bad_drawing_stores_none(store):
    store.ensure_schema()
    rng = np.random.default_rng(4)
    rows = [(1, image_for(1), answers_for({"lenet": 1}, rng)), (11, image_for(2), answers_for({"lenet": 1}, rng))]
    with pytest.raises(BadDrawing):
        store.save_many("c", rows)
    assert table_counts(store.engine) == {"drawings": 0, "answers": 0, "sizes": 0}


def test_filters_and_pages_refuse_bad_values(store):
    store.ensure_schema()
    with pytest.raises(BadDrawing):
        store.page("c", digits=[12])
    with pytest.raises(BadDrawing):
        store.page("c", misread_by=["lenet; DROP TABLE answers"])
    with pytest.raises(BadDrawing):
        store.page("c", limit=10_000)
    with pytest.raises(BadDrawing):
        store.summary("<b>x</b>")


# --- the schema and its migrations ---------------------------------------------------------------------------
def test_schema_is_created_once_with_its_indexes(store, url):
    assert store.version() is None  # nothing until first use
    store.ensure_schema()
    assert store.version() == drawings.MIGRATIONS[-1].version
    indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("drawings")}
    assert {"ix_drawings_collection_id", "ix_drawings_collection_label_id"} <= indexes
    Store(engine_for(url)).ensure_schema()  # a second app on the same database: nothing to do, nothing broken
    with store.engine.connect() as c:
        assert c.execute(sa.text("SELECT COUNT(*) FROM drawings_schema")).scalar() == 1


def test_a_migration_runs_once_and_keeps_the_data(store, url, monkeypatch):
    store.save("c", 2, image_for(2), answers_for({"lenet": 2}, np.random.default_rng(5)))
    ran = []

    def add_index(conn):
        ran.append(1)
        conn.execute(sa.text("CREATE INDEX ix_answers_model_digit ON answers (model, digit)"))

    monkeypatch.setattr(drawings, "MIGRATIONS", [*drawings.MIGRATIONS, drawings.Migration(2, "an index", add_index)])
    for _ in range(2):
        engine = engine_for(url)
        Store(engine).ensure_schema()
        engine.dispose()
    assert ran == [1] and store.version() == 2
    assert "ix_answers_model_digit" in {i["name"] for i in sa.inspect(store.engine).get_indexes("answers")}
    assert store.count("c") == 1 and store.page("c")[0].label == 2


def test_a_failed_migration_leaves_the_database_as_it_was(store, url, monkeypatch):
    store.save("c", 2, image_for(2), answers_for({"lenet": 2}, np.random.default_rng(6)))

    def broken(conn):
        conn.execute(sa.text("CREATE TABLE half_done (x INTEGER)"))
        conn.execute(sa.text("SELECT no_such_column FROM drawings"))

    monkeypatch.setattr(drawings, "MIGRATIONS", [*drawings.MIGRATIONS, drawings.Migration(2, "broken", broken)])
    engine = engine_for(url)
    with pytest.raises(StoreUnavailable):
        Store(engine).ensure_schema()
    engine.dispose()
    assert store.version() == 1 and not sa.inspect(store.engine).has_table("half_done")
    assert store.count("c") == 1


def test_a_newer_schema_is_refused_with_a_message(store, url):
    store.ensure_schema()
    with store.engine.begin() as c:
        c.execute(sa.text("UPDATE drawings_schema SET version = 99"))
    engine = engine_for(url)
    with pytest.raises(StoreUnavailable, match="schema version 99, newer than this app") as e:
        Store(engine).summary("c")
    assert e.value.kind == "newer"
    engine.dispose()


# --- faults: a clear message, and nothing already saved is lost -------------------------------------------
def saved_one(store, label: int = 5):
    return store.save("c", label, image_for(label), answers_for({"lenet": label}, np.random.default_rng(label)))


def test_sqlite_read_only(tmp_path):
    path = tmp_path / "d.sqlite"
    saved_one(Store(engine_for(f"sqlite:///{path}")))
    ro = Store(engine_for(f"sqlite:///file:{path}?mode=ro&uri=true"))
    with pytest.raises(StoreUnavailable, match="read-only") as e:
        saved_one(ro, 6)
    assert e.value.kind == "read-only"
    assert ro.count("c") == 1 and ro.page("c")[0].label == 5  # reading still works


def test_sqlite_locked(tmp_path, monkeypatch):
    monkeypatch.setattr(drawings, "WAIT_S", 0.2)
    path = tmp_path / "d.sqlite"
    store = Store(engine_for(f"sqlite:///{path}"))
    saved_one(store)
    import sqlite3

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the database
    try:
        with pytest.raises(StoreUnavailable, match="busy") as e:
            saved_one(store, 6)
        assert e.value.kind == "locked"
    finally:
        other.execute("ROLLBACK")
        other.close()
    saved_one(store, 7)  # free again: saving works
    assert sorted(d.label for d in store.page("c")) == [5, 7]
    assert table_counts(store.engine) == {"drawings": 2, "answers": 2, "sizes": 2}


def test_sqlite_full(tmp_path):
    path = tmp_path / "d.sqlite"
    engine = engine_for(f"sqlite:///{path}")
    store = Store(engine)
    saved_one(store)
    with engine.connect() as c:
        pages = c.exec_driver_sql("PRAGMA page_count").scalar()

    @sa.event.listens_for(engine, "connect")
    def cap(dbapi_connection, _):
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()  # new connections, each capped at the size it has now
    rng = np.random.default_rng(7)
    rows = [(i % 10, rng.integers(0, 255, (28, 28), dtype=np.uint8), answers_for({"lenet": i % 10}, rng))
            for i in range(200)]
    with pytest.raises(StoreUnavailable, match="full") as e:
        store.save_many("c", rows)
    assert e.value.kind == "full"
    assert table_counts(engine) == {"drawings": 1, "answers": 1, "sizes": 1}  # the failed batch left nothing
    assert store.page("c")[0].label == 5


def test_sqlite_down(tmp_path):
    store = Store(engine_for(f"sqlite:///{tmp_path / 'no-such-folder' / 'd.sqlite'}"))
    with pytest.raises(StoreUnavailable, match="cannot be reached") as e:
        saved_one(store)
    assert e.value.kind == "down"
    with pytest.raises(StoreUnavailable):
        store.summary("c")


def test_postgres_down():
    from tools.browser import free_port

    store = Store(engine_for(f"postgresql+psycopg://mnist@127.0.0.1:{free_port()}/none",
                             connect_args={"connect_timeout": 3}))
    with pytest.raises(StoreUnavailable, match="cannot be reached") as e:
        saved_one(store)
    assert e.value.kind == "down"


def test_postgres_read_only_and_locked(postgres_url, monkeypatch):
    monkeypatch.setattr(drawings, "WAIT_S", 0.3)
    engine = engine_for(postgres_url)
    store = Store(engine)
    saved_one(store)
    holder = engine_for(postgres_url)
    with holder.connect() as c, c.begin():
        c.execute(sa.text("LOCK TABLE collections IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(StoreUnavailable, match="busy") as e:
            saved_one(store, 6)
        assert e.value.kind == "locked"
    holder.dispose()
    name = postgres_url.rsplit("/", 1)[1]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    engine.dispose()  # new sessions start read-only
    with pytest.raises(StoreUnavailable, match="read-only") as e:
        saved_one(store, 7)
    assert e.value.kind == "read-only"
    assert [d.label for d in store.page("c")] == [5]  # still readable, nothing lost
    engine.dispose()


# --- a session's own limits --------------------------------------------------------------------------------
def test_session_quota():
    now = [0.0]
    q = SessionQuota(per_minute=3, per_session=5, clock=lambda: now[0])
    for kept in range(3):
        q.check(kept)
        q.record()
        now[0] += 1
    with pytest.raises(LimitReached, match=r"3 saves within a minute.*wait 57 s"):
        q.check(3)
    now[0] = 61
    q.check(3)
    q.record()
    q.check(4)
    with pytest.raises(LimitReached, match="saved 5 drawings in this visit"):
        q.check(5)


def test_default_url(monkeypatch, tmp_path):
    (tmp_path / "secrets.toml").write_text('[connections.drawings]\nurl = "postgresql://u:p@h/db"\n')
    assert drawings.secrets_url([tmp_path / "nothing", tmp_path]) == "postgresql://u:p@h/db"
    monkeypatch.delenv(drawings.ENV_VAR, raising=False)
    monkeypatch.setattr(drawings, "secrets_url", lambda: None)
    assert drawings.default_url() == f"sqlite:///{drawings.DEFAULT_PATH}"
    monkeypatch.setenv(drawings.ENV_VAR, "sqlite:///x.sqlite")
    assert drawings.default_url() == "sqlite:///x.sqlite"
