"""Shared fixtures: the MNIST data (the copy committed in data/mnist/, unless MNIST_DIR says otherwise), a
tiny trained artifacts folder, clean Streamlit caches for AppTests, and Chromium for the real-browser tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "dashboard")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config):
    # Keras 3 itself calls np.array(tensor) in a way NumPy 2 deprecates; nothing for this project to change.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="session")
def mnist():
    """The whole dataset. It ships with the repository, so not finding it is a failure, never a skip."""
    from core.data import DataError, load_mnist

    try:
        return load_mnist()
    except DataError as e:
        pytest.fail(f"MNIST could not be loaded: {e}")


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory, mnist):
    """All three models trained for two epochs on 2,000 images, with two seeds each in two worker
    processes (the committed artifacts' path): a complete artifacts folder, fast."""
    from core.train import train

    out = tmp_path_factory.mktemp("artifacts")
    train(list(__import__("core").MODELS), epochs=2, subset=2000, out=out, log=lambda s: None, seeds=2, jobs=2)
    return out


def _fully_trained(folder: Path) -> bool:
    """Whether ``folder`` holds all three models from full-data runs (not a --subset quick run)."""
    from core import MODELS

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return len(manifest["models"]) == len(MODELS) and not any(r.get("subset") for r in manifest["models"].values())
    except (OSError, ValueError, KeyError, AttributeError):
        return False


@pytest.fixture(scope="session")
def best_artifacts(request):
    """(folder, fully trained): the committed artifacts when they are fully trained, so answers can be
    checked against the digit drawn; else the tiny ones, where only that answers appear can be checked."""
    committed = ROOT / "artifacts"
    if _fully_trained(committed):
        return committed, True
    return request.getfixturevalue("tiny_artifacts"), False


@pytest.fixture(scope="session")
def committed_models():
    """The committed models in artifacts/ (the ones the dashboard shows); skips without them."""
    from core import ArtifactError, load_models

    try:
        return load_models()
    except ArtifactError as e:
        pytest.skip(f"no committed artifacts ({e}); run python -m core.train")


@pytest.fixture
def fresh_caches():
    """st.cache_data / st.cache_resource are process-wide: no AppTest may see another's artifacts."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def own_artifacts(tiny_artifacts, tmp_path, monkeypatch):
    """A private copy of the tiny artifacts as the app's artifacts folder, to delete or damage files in."""
    import shutil

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    monkeypatch.setenv("MNIST_ARTIFACTS", str(folder))
    return folder


@pytest.fixture(scope="module")
def noise_images():
    """Five random 28x28 float32 images with an empty band at the top, as real digits have background."""
    import numpy as np

    x = np.random.default_rng(3).random((5, 28, 28), dtype=np.float32)
    x[:, :4] = 0
    return x


@pytest.fixture
def artifacts(tiny_artifacts, monkeypatch):
    """The shared tiny artifacts, read-only, as the app's artifacts folder."""
    monkeypatch.setenv("MNIST_ARTIFACTS", str(tiny_artifacts))
    return Path(tiny_artifacts)


@pytest.fixture(scope="session")
def chromium():
    """Chromium's path for the Playwright tests. Missing: a skip, except in CI (env CI set), where it fails."""
    from tools.browser import CHROMIUM, chromium_available

    if not chromium_available():
        reason = (f"Playwright or {CHROMIUM} missing: apt-get install -y chromium; "
                  "pip install -r requirements-dev.txt")
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this test must run)")
        pytest.skip(reason)
    return CHROMIUM


# --- a throwaway PostgreSQL server (the saved drawings' tests) --------------------------------------------
def postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL (/usr/lib/postgresql/N/bin), else the folder of initdb on the PATH."""
    import shutil

    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file() and p.parent.name.isdigit()]
    if found:
        return max(found, key=lambda p: int(p.parent.name))
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def postgres_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, since PostgreSQL refuses root: None when we are not root; else
    Debian's postgres account, else nobody, else a system account made for it."""
    import pwd
    import subprocess

    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody", "mnist-pg-test"):
        try:
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "mnist-pg-test"],
                   check=True, capture_output=True)
    pw = pwd.getpwnam("mnist-pg-test")
    return pw.pw_uid, pw.pw_gid


@pytest.fixture(scope="session")
def postgres_server():
    """A fresh PostgreSQL server: initdb and pg_ctl in a temporary folder, on a free port of 127.0.0.1 (trust
    authentication there only), stopped and deleted at the end; yields its superuser's URL. PostgreSQL not
    installed: a skip, except in CI (env CI set), where it fails."""
    import shutil
    import subprocess
    import tempfile

    from tools.browser import free_port

    bindir = postgres_bin()
    if bindir is None:
        reason = "PostgreSQL is not installed: apt-get install -y postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so these tests must run)")
        pytest.skip(reason)
    account = postgres_account()
    folder = Path(tempfile.mkdtemp(prefix="mnist-pg-"))  # not tmp_path: pytest makes that 0700, out of reach
    as_user = {}
    if account is not None:
        os.chown(folder, *account)
        as_user = {"user": account[0], "group": account[1], "extra_groups": []}
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(folder), "LC_ALL": "C", "TZ": "UTC"}

    def run(program, *args):
        return subprocess.run([str(bindir / program), *args], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=120, **as_user)

    data = folder / "data"
    out = run("initdb", "-D", str(data), "-U", "mnist", "--auth=trust", "--encoding=UTF8", "--no-sync")
    if out.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{out.stdout}\n{out.stderr}")
    for _ in range(3):  # another process may take the free port between finding it and binding it
        port = free_port()
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
                   "-c max_connections=60")
        out = run("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "-t", "60", "start")
        if out.returncode == 0:
            break
    else:
        log = (folder / "server.log").read_text(errors="replace")[-3000:]
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start:\n{out.stdout}\n{out.stderr}\n{log}")
    try:
        yield f"postgresql+psycopg://mnist@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the throwaway server, dropped (connections and all) after the test."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a name of ours: identifiers cannot be bound
    try:
        yield postgres_server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def no_job_left():
    """Ends any training job a test leaves running. A test that fails while its job trains would leave the
    job holding one of the server's training slots, and every later job test would then fail for want of
    a slot: with this, one failure reads as one."""
    yield
    jobs = sys.modules.get("core.jobs")
    for job in list(jobs._live) if jobs else []:
        job.kill()
        job.wait(60)
