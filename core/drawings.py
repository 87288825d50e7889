"""The class's own digits: drawings that visitors chose to save, with the digit they say each one is
and every model's answer, in a SQL database (SQLite by default, PostgreSQL or any SQLAlchemy URL).

    from core.drawings import Store, engine_for
    store = Store(engine_for("sqlite:///data/drawings.sqlite"))     # or the engine of st.connection
    saved = store.save("room-12", 7, result["image"], result["predictions"])   # predict_image's result
    store.summary("room-12").accuracy("lenet")                     # the models measured on the drawings
    store.page("room-12", digits=[7], misread_by=["lenet"], offset=0, limit=24)   # newest first
    store.delete("room-12", [saved.id])                             # a visitor's undo

    python -m core.drawings list
    python -m core.drawings export --collection room-12 --out room-12.npz     # or .csv
    python -m core.drawings purge --collection room-12                        # an operator's command

What one drawing stores: the 28x28 image the models saw (784 bytes, uint8), the digit the visitor says
it is, each model's answer and its ten probabilities, the time (UTC) and the collection's name. Nothing
about the visitor: no session, no address, no free text.

The schema (tables ``collections``, ``drawings``, ``answers`` and ``drawings_schema``) is created on
first use and versioned: ``MIGRATIONS`` lists the steps, each run once, in one transaction with the
version it brings, so a failed step leaves the database as it was. Every statement is SQLAlchemy Core
with bound parameters. Writes take the write lock first (SQLite ``BEGIN IMMEDIATE``; PostgreSQL row
locks on the collection), so concurrent saves never lose or double a row and the collection's count
stays exact. A database that is down, locked, full or read-only raises ``StoreUnavailable`` with a
message for people; bad input raises ``BadDrawing`` and a limit ``LimitReached``, both before anything
is written. Never imports Streamlit.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import math
import os
import re
import sys
import threading
import time
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "data" / "drawings.sqlite"
ENV_VAR = "DRAWINGS_DB_URL"
DEFAULT_COLLECTION = "default"

# Limits that protect a shared server (read when used, so a deployment or a test may change them).
SAVES_PER_MINUTE = 10  # per browser session
SAVES_PER_SESSION = 100  # drawings one session may keep
ROWS_PER_COLLECTION = 20_000  # drawings in one collection (about 1.3 kB each with three answers)
ROWS_IN_ALL = 200_000  # drawings in the whole database, all collections together (new names cost nothing)
PAGE_LIMIT = 200  # most drawings one page() call returns
MAX_MODELS = 8  # answers stored per drawing
WAIT_S = 10.0  # how long a save waits for another writer's lock before it says the database is busy

NAME_MAX = 32
_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_MODEL = re.compile(r"[a-z][a-z0-9_]*")
PIXELS = 28 * 28
PROBS_BYTES = 10 * 4  # ten float32

__all__ = ["BadDrawing", "Drawing", "DrawingsError", "LimitReached", "Saved", "SessionQuota", "Store",
           "StoreUnavailable", "Summary", "check_collection", "default_url", "engine_for", "main"]


# --- errors: each message is for people ------------------------------------------------------------
class DrawingsError(Exception):
    """Something about the drawings a page or command can say in one sentence."""


class BadDrawing(DrawingsError, ValueError):
    """The request is refused: a bad label, image, answer or collection name, or an oversized request."""


class LimitReached(DrawingsError):
    """A limit that protects the server: saves per minute, drawings per session, rows per collection."""


class StoreUnavailable(DrawingsError):
    """The database cannot do it now: ``kind`` is down, locked, full, read-only, newer or failed."""

    def __init__(self, message: str, kind: str = "failed"):
        super().__init__(message)
        self.kind = kind


MESSAGES = {
    "down": "The drawings database cannot be reached right now.",
    "locked": "The drawings database is busy (locked by another writer) and did not answer in time.",
    "full": "The drawings database is full: the disk or the database has no room left.",
    "read-only": "The drawings database is read-only on this server.",
}


def _describe(error: Exception) -> StoreUnavailable:
    """A database failure in words, by its kind; the driver's own text only as the last resort."""
    orig = getattr(error, "orig", None) or error
    text = str(orig).lower()
    code = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
    if isinstance(error, exc.TimeoutError):  # every pooled connection busy
        kind = "locked"
    elif "read-only" in text or "readonly" in text or code == "25006":
        kind = "read-only"
    elif "locked" in text or "busy" in text or code in ("55P03", "40P01", "40001", "57014"):
        kind = "locked"
    elif "full" in text or "no space" in text or "could not extend" in text or code.startswith("53"):
        kind = "full"
    elif (code.startswith(("08", "57P", "3D")) or "unable to open" in text or "could not connect" in text
          or "connection" in text or "server closed" in text or "no such file" in text
          or isinstance(error, (exc.InterfaceError, exc.NoSuchModuleError, exc.ArgumentError))):
        kind = "down"
    else:
        first = str(orig).strip().splitlines()[0][:200] if str(orig).strip() else type(orig).__name__
        return StoreUnavailable(f"The drawings database failed: {first}", "failed")
    return StoreUnavailable(MESSAGES[kind], kind)


# --- checking what is saved ------------------------------------------------------------------------
def check_collection(name) -> str:
    """A collection's name, lower-cased: 1-32 letters, digits and dashes, not starting or ending with
    a dash. Anything else (SQL, HTML, spaces, other scripts, long strings) is refused."""
    if not isinstance(name, str):
        raise BadDrawing("A collection's name must be text.")
    if len(name) > NAME_MAX:
        raise BadDrawing(f"A collection's name has at most {NAME_MAX} characters.")
    name = name.strip()
    if not name.isascii() or not _NAME.fullmatch(name := name.lower()):
        raise BadDrawing(f"A collection's name may use only letters, digits and dashes (at most {NAME_MAX}, "
                         "not starting or ending with a dash), like room-12.")
    return name


def check_label(label) -> int:
    """The digit the visitor says it is: an integer 0 to 9 (not a bool, not text)."""
    if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
        raise BadDrawing("The digit must be a whole number from 0 to 9.")
    if not 0 <= int(label) <= 9:
        raise BadDrawing(f"The digit must be from 0 to 9, not {int(label)}.")
    return int(label)


def check_image(image) -> np.ndarray:
    """The 28x28 image the models saw: uint8, or float32 in [0, 1] as predict_image gives it -> uint8."""
    if not isinstance(image, np.ndarray):
        raise BadDrawing("The image must be a 28x28 array.")
    if image.shape != (28, 28):
        raise BadDrawing(f"The image must be 28x28 pixels, not {'x'.join(map(str, image.shape)) or 'a scalar'}.")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype != np.float32:
        raise BadDrawing(f"The image must be uint8 or float32, not {image.dtype}.")
    if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
        raise BadDrawing("A float32 image's pixels must be between 0 and 1.")
    return np.round(image * 255).astype(np.uint8)


def check_answers(answers) -> dict[str, tuple[int, np.ndarray]]:
    """Each model's answer, as predict_image gives them: {model: {"digit": int, "probs": (10,)}}
    -> {model: (digit, float32 probs)}. The digit must be the most probable one."""
    if not isinstance(answers, Mapping) or not answers:
        raise BadDrawing("At least one model's answer is needed.")
    if len(answers) > MAX_MODELS:
        raise BadDrawing(f"At most {MAX_MODELS} models' answers are stored, not {len(answers)}.")
    out = {}
    for name, answer in answers.items():
        if not isinstance(name, str) or len(name) > NAME_MAX or not _MODEL.fullmatch(name):
            raise BadDrawing("A model's name must be a short identifier (letters, digits, underscores).")
        try:
            digit, probs = answer["digit"], answer["probs"]
        except (TypeError, KeyError, IndexError):
            raise BadDrawing(f"{name}: an answer needs a digit and ten probabilities.") from None
        try:
            digit = check_label(digit)
        except BadDrawing as e:
            raise BadDrawing(f"{name}: {e}") from None
        try:  # the length first: a huge list is refused before it is converted
            size = len(probs)
        except TypeError:
            size = None
        if size != 10:
            raise BadDrawing(f"{name}: ten probabilities are needed, not {size if size is not None else 'one'}.")
        try:
            p = np.asarray(probs, dtype=np.float64)
        except (TypeError, ValueError):
            raise BadDrawing(f"{name}: the probabilities must be ten numbers.") from None
        if p.shape != (10,) or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1 + 1e-6:
            raise BadDrawing(f"{name}: ten probabilities between 0 and 1 are needed.")
        if abs(p.sum() - 1) > 1e-3:
            raise BadDrawing(f"{name}: the probabilities must add up to 1, not {p.sum():.4f}.")
        if p[digit] < p.max():
            raise BadDrawing(f"{name}: the answer {digit} is not the most probable digit.")
        out[name] = (digit, p.astype("<f4"))
    return out


# --- the schema ----------------------------------------------------------------------------------
metadata = sa.MetaData()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PRIMARY KEY is the rowid

schema_table = sa.Table(
    "drawings_schema", metadata,
    sa.Column("version", sa.Integer, nullable=False),
)
collections = sa.Table(
    "collections", metadata,
    sa.Column("name", sa.String(NAME_MAX), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),  # drawings in it, kept in the same transaction as they are
    sa.Column("created", sa.DateTime, nullable=False),  # UTC
    sa.CheckConstraint("size >= 0", name="ck_collections_size"),
)
drawings = sa.Table(
    "drawings", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("collection", sa.String(NAME_MAX), sa.ForeignKey("collections.name"), nullable=False),
    sa.Column("label", sa.SmallInteger, nullable=False),  # the digit the visitor says it is
    sa.Column("image", sa.LargeBinary, nullable=False),  # 784 bytes: 28 rows of 28 uint8 pixels
    sa.Column("created", sa.DateTime, nullable=False),  # UTC
    sa.CheckConstraint("label BETWEEN 0 AND 9", name="ck_drawings_label"),
    sa.CheckConstraint(f"length(image) = {PIXELS}", name="ck_drawings_image"),
    sa.Index("ix_drawings_collection_id", "collection", "id"),  # newest first, pages
    sa.Index("ix_drawings_collection_label_id", "collection", "label", "id"),  # filtered by digit
    sqlite_autoincrement=True,  # an id is never reused, even after an undo
)
answers = sa.Table(
    "answers", metadata,
    sa.Column("drawing_id", _ID, sa.ForeignKey("drawings.id"), primary_key=True),
    sa.Column("model", sa.String(NAME_MAX), primary_key=True),
    sa.Column("digit", sa.SmallInteger, nullable=False),
    sa.Column("probs", sa.LargeBinary, nullable=False),  # ten little-endian float32
    sa.CheckConstraint("digit BETWEEN 0 AND 9", name="ck_answers_digit"),
    sa.CheckConstraint(f"length(probs) = {PROBS_BYTES}", name="ck_answers_probs"),
)


def _v1(conn) -> None:
    metadata.create_all(conn, tables=[collections, drawings, answers], checkfirst=True)


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    step: object  # callable(connection), run inside the migration's transaction


MIGRATIONS = [Migration(1, "collections, drawings and answers, with the indexes the page's queries use", _v1)]
LOCK_KEY = 0x4D4E4953  # PostgreSQL advisory lock held while migrating ("MNIS")


# --- the engine ------------------------------------------------------------------------------------
WRITE = "drawings_write"  # execution option: this transaction writes


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's own
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {int(WAIT_S * 1000)}")  # a PRAGMA takes no parameter: an int of ours
    cursor.close()


def _sqlite_begin(conn) -> None:
    """Writes take the write lock at BEGIN: a reader that turns writer could fail instead of waiting."""
    raw = conn.connection.dbapi_connection
    if raw.isolation_level is not None:  # a connection made before configure()
        raw.isolation_level = None
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def configure(engine: sa.Engine) -> sa.Engine:
    """Make an engine (ours or st.connection's) safe for concurrent saves; idempotent."""
    if engine.dialect.name == "sqlite" and not sa.event.contains(engine, "begin", _sqlite_begin):
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def engine_for(url: str, **kwargs) -> sa.Engine:
    """An engine for ``url`` (any SQLAlchemy URL), configured; raises StoreUnavailable if unusable."""
    try:
        return configure(sa.create_engine(url, **kwargs))
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError, ValueError) as e:
        raise StoreUnavailable(f"The drawings database address is not usable: {e}", "down") from None


def secrets_url(folders=(ROOT / ".streamlit", Path.home() / ".streamlit")) -> str | None:
    """``[connections.drawings] url`` from the first secrets.toml that has it (as Streamlit reads them)."""
    for folder in folders:
        try:
            with open(Path(folder) / "secrets.toml", "rb") as f:
                url = tomllib.load(f).get("connections", {}).get("drawings", {}).get("url")
        except (OSError, tomllib.TOMLDecodeError, AttributeError):
            continue
        if isinstance(url, str) and url:
            return url
    return None


def default_url() -> str:
    """$DRAWINGS_DB_URL, else the secrets' ``[connections.drawings] url``, else data/drawings.sqlite."""
    return os.environ.get(ENV_VAR) or secrets_url() or f"sqlite:///{DEFAULT_PATH}"


# --- what the store returns ----------------------------------------------------------------------
@dataclass(frozen=True)
class Saved:
    ids: list[int]
    collection: str
    size: int  # drawings in the collection after the save

    @property
    def id(self) -> int:
        return self.ids[-1]


@dataclass(frozen=True)
class Drawing:
    id: int
    collection: str
    label: int
    image: np.ndarray  # uint8 (28, 28)
    created: dt.datetime  # UTC
    answers: dict[str, tuple[int, np.ndarray]]  # model -> (digit, float32 probs (10,))

    def misread_by(self) -> list[str]:
        return [m for m, (digit, _) in self.answers.items() if digit != self.label]


@dataclass(frozen=True)
class Summary:
    """A collection's figures: the confusion matrix of each model holds everything else."""

    collection: str
    count: int  # drawings
    labels: np.ndarray  # (10,) drawings per digit the visitors gave
    confusion: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (10, 10): rows label, columns answer

    @property
    def models(self) -> list[str]:
        return list(self.confusion)

    def answered(self, model: str) -> int:
        return int(self.confusion[model].sum())

    def correct(self, model: str) -> int:
        return int(np.trace(self.confusion[model]))

    def accuracy(self, model: str) -> float:
        n = self.answered(model)
        return self.correct(model) / n if n else math.nan

    def per_digit(self, model: str) -> np.ndarray:
        """(10,) share of each digit's drawings the model read right; NaN for a digit with none."""
        cm = self.confusion[model]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(cm) / cm.sum(1)


# --- the store -----------------------------------------------------------------------------------
def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _probs(blob) -> np.ndarray:
    return np.frombuffer(bytes(blob), "<f4").astype(np.float32)


class Store:
    """The drawings in one database, through an SQLAlchemy engine. Thread-safe; keeps no rows."""

    def __init__(self, engine: sa.Engine, rows_per_collection: int | None = None):
        self.engine = configure(engine)
        self.rows_per_collection = rows_per_collection
        self._ready = False
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        return self.rows_per_collection if self.rows_per_collection is not None else ROWS_PER_COLLECTION

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    # -- transactions, each turning database failures into StoreUnavailable
    @contextmanager
    def _tx(self, write: bool) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE: True})
                elif self.postgres:
                    conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot for the page
                with conn.begin():
                    if self.postgres:  # SET LOCAL lock_timeout, as a bound parameter
                        conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"),
                                     {"ms": f"{int(WAIT_S * 1000)}ms"})
                    yield conn
        except DrawingsError:
            raise
        except exc.SQLAlchemyError as e:
            raise _describe(e) from e

    # -- schema
    def _version(self, conn) -> int | None:
        if not sa.inspect(conn).has_table(schema_table.name):
            return None
        return conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()

    def ensure_schema(self) -> None:
        """Create or migrate the schema if needed; a read-only database already up to date is fine."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            latest = MIGRATIONS[-1].version
            with self._tx(write=False) as conn:
                version = self._version(conn)
            if version is not None and version > latest:
                raise StoreUnavailable(f"The drawings database has schema version {version}, newer than this app "
                                       f"knows ({latest}): update the app.", "newer")
            if version != latest:
                with self._tx(write=True) as conn:
                    self._migrate(conn, latest)
            self._ready = True

    def _migrate(self, conn, latest: int) -> None:
        if self.postgres:  # two servers starting at once: one migrates, the other then sees it done
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        schema_table.create(conn, checkfirst=True)
        version = self._version(conn) or 0
        for m in MIGRATIONS:
            if m.version > version:
                m.step(conn)
        if version == 0:
            conn.execute(schema_table.insert().values(version=latest))
        elif version < latest:
            conn.execute(schema_table.update().values(version=latest))

    def version(self) -> int | None:
        with self._tx(write=False) as conn:
            return self._version(conn)

    # -- writing
    def save(self, collection: str, label, image, answers_) -> Saved:
        """Store one drawing; everything is checked before anything is written. Raises BadDrawing,
        LimitReached (the collection is full) or StoreUnavailable."""
        row = (check_label(label), check_image(image), check_answers(answers_))
        return self.save_many(check_collection(collection), [row], checked=True)

    def save_many(self, collection: str, rows: Iterable, checked: bool = False) -> Saved:
        """Store (label, image, answers) rows in one transaction: all or none."""
        name = check_collection(collection)
        if not checked:
            rows = [(check_label(lb), check_image(im), check_answers(an)) for lb, im, an in rows]
        rows = list(rows)
        if not rows:
            raise BadDrawing("Nothing to save.")
        if len(rows) > self.limit:
            raise LimitReached(self._full_message(name))
        self.ensure_schema()
        now = _utcnow()
        with self._tx(write=True) as conn:
            self._add_collection(conn, name, now)
            size = conn.execute(
                collections.update()
                .where(collections.c.name == name, collections.c.size + len(rows) <= self.limit)
                .values(size=collections.c.size + len(rows))
                .returning(collections.c.size)).scalar()
            if size is None:
                raise LimitReached(self._full_message(name))
            everywhere = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(collections.c.size), 0))).scalar()
            if everywhere > ROWS_IN_ALL:  # this save's rows are counted already
                raise LimitReached(f"The drawings database is full: it holds at most {ROWS_IN_ALL:,} drawings in "
                                   "all. Ask the operator to export and purge old collections.")
            ids = conn.execute(
                drawings.insert().returning(drawings.c.id, sort_by_parameter_order=True),
                [{"collection": name, "label": label, "image": image.tobytes(), "created": now}
                 for label, image, _ in rows]).scalars().all()
            conn.execute(answers.insert(), [
                {"drawing_id": i, "model": model, "digit": digit, "probs": probs.tobytes()}
                for i, (_, _, given) in zip(ids, rows, strict=True) for model, (digit, probs) in given.items()])
        return Saved([int(i) for i in ids], name, int(size))

    def _full_message(self, name: str) -> str:
        return (f"The collection {name} is full: it holds at most {self.limit:,} drawings. Start another "
                "collection, or ask the operator to export and purge this one.")

    def _add_collection(self, conn, name: str, now) -> None:
        values = {"name": name, "size": 0, "created": now}
        upsert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(self.engine.dialect.name)
        if upsert is not None:
            conn.execute(upsert(collections).values(**values).on_conflict_do_nothing())
            return
        exists = conn.execute(sa.select(collections.c.name).where(collections.c.name == name)).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(collections.insert().values(**values))
            except exc.IntegrityError:
                pass  # another session created it first

    def delete(self, collection: str, ids: Iterable[int]) -> int:
        """Delete these drawings of this collection (a visitor's own saves); returns how many went."""
        name = check_collection(collection)
        ids = sorted({int(i) for i in ids})
        if not ids:
            return 0
        if len(ids) > SAVES_PER_SESSION * 10:
            raise BadDrawing("Too many drawings to delete at once.")
        self.ensure_schema()
        with self._tx(write=True) as conn:
            found = conn.execute(sa.select(drawings.c.id).where(
                drawings.c.collection == name, drawings.c.id.in_(ids))).scalars().all()
            if not found:
                return 0
            conn.execute(answers.delete().where(answers.c.drawing_id.in_(found)))
            conn.execute(drawings.delete().where(drawings.c.id.in_(found)))
            conn.execute(collections.update().where(collections.c.name == name)
                         .values(size=collections.c.size - len(found)))
        return len(found)

    def purge(self, collection: str) -> int:
        """Delete a whole collection (an operator's command); returns how many drawings went."""
        name = check_collection(collection)
        self.ensure_schema()
        with self._tx(write=True) as conn:
            mine = sa.select(drawings.c.id).where(drawings.c.collection == name)
            conn.execute(answers.delete().where(answers.c.drawing_id.in_(mine)))
            n = conn.execute(drawings.delete().where(drawings.c.collection == name)).rowcount
            conn.execute(collections.delete().where(collections.c.name == name))
        return int(n)

    # -- reading
    def collections(self, limit: int = 500) -> list[tuple[str, int]]:
        """(name, drawings) of every collection that has drawings, by name."""
        self.ensure_schema()
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(collections.c.name, collections.c.size).where(collections.c.size > 0)
                                .order_by(collections.c.name).limit(limit)).all()
        return [(r.name, int(r.size)) for r in rows]

    def summary(self, collection: str) -> Summary:
        """Counts per digit and each model's confusion matrix, from two GROUP BY queries (no rows loaded)."""
        name = check_collection(collection)
        self.ensure_schema()
        labels = np.zeros(10, np.int64)
        confusion: dict[str, np.ndarray] = {}
        with self._tx(write=False) as conn:
            for label, n in conn.execute(sa.select(drawings.c.label, sa.func.count())
                                         .where(drawings.c.collection == name).group_by(drawings.c.label)):
                labels[int(label)] = n
            joined = answers.join(drawings, answers.c.drawing_id == drawings.c.id)
            q = (sa.select(answers.c.model, drawings.c.label, answers.c.digit, sa.func.count()).select_from(joined)
                 .where(drawings.c.collection == name)
                 .group_by(answers.c.model, drawings.c.label, answers.c.digit))
            for model, label, digit, n in conn.execute(q):
                confusion.setdefault(model, np.zeros((10, 10), np.int64))[int(label), int(digit)] = n
        return Summary(name, int(labels.sum()), labels, dict(sorted(confusion.items())))

    def _where(self, name: str, digits, misread_by) -> list:
        where = [drawings.c.collection == name]
        if digits:
            where.append(drawings.c.label.in_([check_label(d) for d in digits]))
        if misread_by:
            models = [m for m in misread_by if isinstance(m, str) and _MODEL.fullmatch(m) and len(m) <= NAME_MAX]
            if len(models) != len(misread_by):
                raise BadDrawing("Unknown model name in the filter.")
            where.append(sa.exists().where(answers.c.drawing_id == drawings.c.id, answers.c.model.in_(models),
                                           answers.c.digit != drawings.c.label))
        return where

    def count(self, collection: str, digits=None, misread_by=None) -> int:
        """How many drawings match: labelled one of ``digits``, misread by any of ``misread_by``."""
        name = check_collection(collection)
        self.ensure_schema()
        with self._tx(write=False) as conn:
            if not digits and not misread_by:
                return int(conn.execute(sa.select(collections.c.size).where(collections.c.name == name)).scalar() or 0)
            return int(conn.execute(sa.select(sa.func.count()).select_from(drawings)
                                    .where(*self._where(name, digits, misread_by))).scalar())

    def page(self, collection: str, digits=None, misread_by=None, offset: int = 0, limit: int = 24) -> list[Drawing]:
        """One page of matching drawings, newest first; only these rows are read."""
        name = check_collection(collection)
        if not 0 < int(limit) <= PAGE_LIMIT or int(offset) < 0:
            raise BadDrawing(f"A page holds 1 to {PAGE_LIMIT} drawings, from offset 0 on.")
        self.ensure_schema()
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(drawings).where(*self._where(name, digits, misread_by))
                                .order_by(drawings.c.id.desc()).offset(int(offset)).limit(int(limit))).all()
            return self._with_answers(conn, rows)

    def iter_drawings(self, collection: str, batch: int = 500) -> Iterator[Drawing]:
        """Every drawing of a collection, oldest first, ``batch`` rows at a time (keyset pagination)."""
        name = check_collection(collection)
        self.ensure_schema()
        last = 0
        while True:
            with self._tx(write=False) as conn:
                rows = conn.execute(sa.select(drawings).where(drawings.c.collection == name, drawings.c.id > last)
                                    .order_by(drawings.c.id).limit(batch)).all()
                chunk = self._with_answers(conn, rows)
            yield from chunk
            if len(rows) < batch:
                return
            last = rows[-1].id

    def _with_answers(self, conn, rows) -> list[Drawing]:
        found: dict[int, dict] = {r.id: {} for r in rows}
        if rows:
            q = sa.select(answers).where(answers.c.drawing_id.in_(list(found))).order_by(answers.c.model)
            for a in conn.execute(q):
                found[a.drawing_id][a.model] = (int(a.digit), _probs(a.probs))
        return [Drawing(int(r.id), r.collection, int(r.label),
                        np.frombuffer(bytes(r.image), np.uint8).reshape(28, 28).copy(),
                        r.created.replace(tzinfo=dt.UTC), found[r.id]) for r in rows]

    # -- exporting
    def export_npz(self, collection: str, out) -> int:
        """The collection as a data set, to a path or binary file: images uint8 (n, 28, 28), labels (n,),
        models (m,), answers (n, m) (-1: no answer), probs float32 (n, m, 10), ids, created (ISO, UTC)."""
        name = check_collection(collection)
        ids, labels, images, created, given = [], [], [], [], []
        for d in self.iter_drawings(name):
            ids.append(d.id)
            labels.append(d.label)
            images.append(d.image)
            created.append(d.created.isoformat(timespec="seconds"))
            given.append(d.answers)
        models = sorted({m for g in given for m in g})
        n, m = len(ids), len(models)
        answers_ = np.full((n, m), -1, np.int64)
        probs = np.full((n, m, 10), np.nan, np.float32)
        for i, g in enumerate(given):
            for j, model in enumerate(models):
                if model in g:
                    answers_[i, j], probs[i, j] = g[model]
        np.savez_compressed(out, images=np.asarray(images, np.uint8).reshape(n, 28, 28),
                            labels=np.asarray(labels, np.int64), models=np.asarray(models, dtype="U32"),
                            answers=answers_, probs=probs, ids=np.asarray(ids, np.int64),
                            created=np.asarray(created, dtype="U32"), collection=np.asarray(name))
        return n

    def export_csv(self, collection: str, out) -> int:
        """Labels and answers, one drawing a line: id, created, label, then each model's answer and its
        probability. ``out`` is a path or a text file."""
        name = check_collection(collection)
        summary = self.summary(name)
        models = summary.models
        own = isinstance(out, (str, os.PathLike))
        f = open(out, "w", newline="", encoding="utf-8") if own else out  # noqa: SIM115
        try:
            w = csv.writer(f)
            w.writerow(["id", "created", "collection", "label", *models, *(f"{m}_probability" for m in models)])
            n = 0
            for d in self.iter_drawings(name):
                got = [d.answers.get(m) for m in models]
                w.writerow([d.id, d.created.isoformat(timespec="seconds"), name, d.label,
                            *("" if g is None else g[0] for g in got),
                            *("" if g is None else f"{float(g[1][g[0]]):.6f}" for g in got)])
                n += 1
            return n
        finally:
            if own:
                f.close()

    def npz_bytes(self, collection: str) -> bytes:
        buf = io.BytesIO()
        self.export_npz(collection, buf)
        return buf.getvalue()

    def csv_text(self, collection: str) -> str:
        buf = io.StringIO()
        self.export_csv(collection, buf)
        return buf.getvalue()


# --- a browser session's limits (kept in the session by the app; no database involved) --------------
class SessionQuota:
    """Saves per minute and drawings kept by one browser session."""

    def __init__(self, per_minute: int | None = None, per_session: int | None = None, clock=time.monotonic):
        self.per_minute = per_minute if per_minute is not None else SAVES_PER_MINUTE
        self.per_session = per_session if per_session is not None else SAVES_PER_SESSION
        self.clock = clock
        self.times: deque[float] = deque()

    def check(self, kept: int) -> None:
        """Raise LimitReached if one more save would pass a limit; ``kept``: this session's saves still kept."""
        now = self.clock()
        while self.times and now - self.times[0] >= 60:
            self.times.popleft()
        if kept >= self.per_session:
            raise LimitReached(f"You have saved {kept} drawings in this visit, the most one visit may keep. "
                               "Undo some to save others.")
        if len(self.times) >= self.per_minute:
            wait = max(1, math.ceil(60 - (now - self.times[0])))
            raise LimitReached(f"That is {self.per_minute} saves within a minute, the most allowed: wait {wait} s "
                               "and save again.")

    def record(self) -> None:
        self.times.append(self.clock())


# --- the command ---------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.drawings", description="The saved drawings: list the "
                                "collections, export one as a data set, or purge one.")
    p.add_argument("--db", metavar="URL", help=f"SQLAlchemy URL (default: ${ENV_VAR}, else the secrets' "
                   "[connections.drawings] url, else data/drawings.sqlite)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every collection and how many drawings it holds")
    export = sub.add_parser("export", help="write a collection as .npz (images, labels, answers) or .csv")
    export.add_argument("--collection", required=True)
    export.add_argument("--out", required=True, type=Path, help="FILE.npz or FILE.csv")
    purge = sub.add_parser("purge", help="delete a collection and all its drawings")
    purge.add_argument("--collection", required=True)
    args = p.parse_args(argv)
    try:
        store = Store(engine_for(args.db or default_url()))
        if args.command == "list":
            for name, n in store.collections():
                print(f"{name}\t{n}")
        elif args.command == "export":
            suffix = args.out.suffix.lower()
            if suffix not in (".npz", ".csv"):
                raise BadDrawing(f"--out must end in .npz or .csv, not {suffix or 'nothing'}.")
            n = (store.export_npz if suffix == ".npz" else store.export_csv)(args.collection, args.out)
            print(f"{n:,} drawings of {check_collection(args.collection)} written to {args.out}")
        else:
            n = store.purge(args.collection)
            print(f"{n:,} drawings of {check_collection(args.collection)} deleted")
    except DrawingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
