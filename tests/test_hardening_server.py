"""Issue #15 against real servers: what a visitor's client can send (forged messages, floods of uploads,
a training left behind in a closed tab) and how the server is started (from any folder). Each test
failed before its change; the clients speak Streamlit's own protocol (tools/stclient.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

from tools.browser import app_server
from tools.stclient import StClient, elements, texts

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "dashboard" / ".streamlit" / "config.toml"
MB = 2**20
WAIT = 90  # seconds any one wait may take on a loaded machine; never reached when things work
METRICS_TTL = 5.2  # seconds Streamlit keeps its memory figures (starlette_routes._METRICS_EXPENSIVE_STATS_TTL_SECONDS)


_metrics_read = [-math.inf]


def metrics(url: str) -> dict[str, int]:
    """Streamlit's memory figures (``/_stcore/metrics``): bytes per cache, by 'type/name'. The server computes
    them at most every 5 s, so a read waits until the last one has expired."""
    time.sleep(max(0.0, _metrics_read[0] + METRICS_TTL - time.monotonic()))
    _metrics_read[0] = time.monotonic()
    with urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'cache_memory_bytes\{cache_type="([^"]*)",cache="([^"]*)"\} (\d+)', text):
        out[f"{m[1]}/{m[2]}"] = out.get(f"{m[1]}/{m[2]}", 0) + int(m[3])
    return out


def uploads_held(url: str) -> int:
    return metrics(url).get("UploadedFileManager/", 0)


def wait_until(check, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.5)
    return result


@pytest.fixture(scope="module")
def server(tiny_artifacts):
    """One server for the module, with closed tabs forgotten 3 s after they close."""
    with app_server(tiny_artifacts, args=["--server.disconnectedSessionTTL", "3"]) as s:
        yield s


# --- uploads ---------------------------------------------------------------------------------------------
def test_one_session_cannot_fill_memory_with_uploads(server):
    """[40 files of 4.9 MB in 0.9 s: +188 MB, held until the session expired, and in fact for good.] A session
    holds its last two files; all are let go once it has ended."""
    async def flood():
        async with StClient.connect(server.url) as s:
            await s.run()
            codes = [await asyncio.to_thread(s.upload, bytes(int(4.9 * MB))) for _ in range(12)]
            return codes, uploads_held(server.url)

    codes, held = asyncio.run(flood())
    assert set(codes) == {204}  # the front end's own upload still works: the oldest files make way
    assert held <= 2 * 4.9 * MB + 1000, f"one session holds {held / MB:.0f} MB"
    wait_until(lambda: uploads_held(server.url) == 0, "the closed session's uploads are let go")


def test_all_sessions_together_hold_at_most_64_mb_of_uploads(server):
    async def many():
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(StClient.connect(server.url)) for _ in range(8)]
            for s in sessions:
                await s.run()
            codes = [await asyncio.to_thread(s.upload, bytes(int(4.9 * MB))) for s in sessions for _ in range(2)]
            return codes, uploads_held(server.url)

    codes, held = asyncio.run(many())
    assert 503 in codes and codes.count(204) >= 12, codes
    assert held <= 64 * MB
    wait_until(lambda: uploads_held(server.url) == 0, "the closed sessions' uploads are let go")


# --- forged developer messages ------------------------------------------------------------------------------
def test_a_forged_clear_cache_message_clears_nothing(server):
    """[Any visitor could empty the global model cache: the next Draw page took 4 s.] Also git's view of
    the repository, which the viewer toolbar never asks for, is not given out."""
    async def forge():
        async with StClient.connect(server.url) as s:
            await s.run()  # the Home page fills the artifact cache
            before = {k: v for k, v in metrics(server.url).items() if k.startswith("st_cache_data")}
            await s.send(BackMsg(clear_cache=True))
            await s.send(BackMsg(load_git_info=True))
            await s.sync()  # both handled
            after = {k: v for k, v in metrics(server.url).items() if k.startswith("st_cache_data")}
            return before, after, [m.WhichOneof("type") for m in s.received]

    before, after, kinds = asyncio.run(forge())
    assert before and after == before, (before, after)
    assert "git_info_changed" not in kinds


# --- training -----------------------------------------------------------------------------------------------
def widget_ids(msgs) -> dict[str, str]:
    """{widget key: widget id} of a run's widgets (ids end with the key given in the page)."""
    out = {}
    for e in elements(msgs):
        part = getattr(e, e.WhichOneof("type"))
        if getattr(part, "id", "").startswith("$$ID-"):
            out[part.id.split("-", 2)[2]] = part.id
    return out


async def press_train(s: StClient) -> list[str]:
    """On the Train page: LeNet, 20,000 images, 10 epochs, Train; returns the page's alerts after."""
    ids = widget_ids(await s.run("train"))
    states = [WidgetState(id=ids["train_model"], string_value="LeNet-5 CNN (Keras)")]
    ids = widget_ids(await s.run("train", WidgetStates(widgets=states)))
    states += [WidgetState(id=ids["train_subset"], string_array_value={"data": ["20,000"]}),
               WidgetState(id=ids["train_epochs"], double_array_value={"data": [10]})]
    ids = widget_ids(await s.run("train", WidgetStates(widgets=states)))
    msgs = await s.run("train", WidgetStates(widgets=[*states, WidgetState(id=ids["train"], trigger_value=True)]))
    return texts(msgs, "alert") + texts(msgs, "exception")


def test_one_browser_trains_one_model_and_a_closed_tab_frees_its_slot(server):
    """[Closing a tab left its training running, both server-wide slots taken for up to a minute; one person
    with two tabs could keep Train busy.] A second tab of the same browser is told it is already training;
    once the first tab closes, its training stops and the second tab may train."""
    async def scenario():
        async with StClient.connect(server.url) as first:
            assert not await press_train(first)  # training
            async with StClient.connect(server.url, cookie=first.cookie) as second:  # another tab, same browser
                refused = await press_train(second)
        async with StClient.connect(server.url, cookie=first.cookie) as third:  # the first tab is closed
            deadline = time.monotonic() + WAIT
            while (said := await press_train(third)) and time.monotonic() < deadline:
                await asyncio.sleep(1)
            return refused, said

    refused, later = asyncio.run(scenario())
    assert any("already training" in t for t in refused), refused
    assert not later, later


# --- settings, wherever the server starts -----------------------------------------------------------------
def test_the_settings_hold_wherever_the_server_is_started(tiny_artifacts, tmp_path):
    """[Started outside the repository root, .streamlit/config.toml was not read: tracebacks with server
    paths, Rerun and Clear cache in the menu, 50 MB uploads.] Started from an empty folder, the server
    still shows the viewer toolbar and the theme, and refuses a 6 MB upload."""
    with app_server(tiny_artifacts, cwd=tmp_path) as s:
        async def look():
            async with StClient.connect(s.url) as c:
                await c.run()
                return c.new_session, c.upload(bytes(6 * MB)), c.upload(bytes(4 * MB))

        new_session, big, small = asyncio.run(look())
    assert new_session.config.toolbar_mode == new_session.config.ToolbarMode.Value("VIEWER")
    assert not new_session.config.gather_usage_stats
    assert new_session.custom_theme.base_radius == "medium"
    assert new_session.custom_theme.light.primary_color.upper() == "#4F46E5"
    assert (big, small) == (413, 204)


def test_every_option_of_the_config_file_applies_from_any_folder(tmp_path):
    """Streamlit reads the file beside the entry point (dashboard/.streamlit/config.toml) wherever it starts:
    every option in it, tracebacks hidden included, is what a server started elsewhere runs with."""
    expected = {f"{section}.{key}": value for section, options in tomllib.loads(CONFIG.read_text()).items()
                if isinstance(options, dict) for key, value in options.items() if not isinstance(value, dict)}
    assert expected["client.showErrorDetails"] == "type" and expected["client.toolbarMode"] == "viewer"
    code = ("import json, sys; from streamlit import config; from streamlit.web import bootstrap\n"
            "config._main_script_path = sys.argv[1]; bootstrap.load_config_options(flag_options={})\n"
            "print(json.dumps({k: config.get_option(k) for k in json.loads(sys.argv[2])}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "dashboard" / "Home.py"), json.dumps(list(expected))],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected


def test_the_root_config_is_a_copy_for_community_cloud():
    assert (ROOT / ".streamlit" / "config.toml").read_text() == CONFIG.read_text()


def test_the_server_gives_each_request_one_blas_thread():
    """OpenBLAS spread a prediction's small matrix products over both cores and its idle threads spun:
    50-110 ms of server CPU per prediction for 3 ms of work. The guard limits it to one thread, in a fresh
    interpreter as the server's first run meets it: NumPy not yet imported (Streamlit loads it lazily), which
    left the first version of the guard nothing to limit."""
    code = """
import sys
from dashboard import server_guard
assert "numpy" not in sys.modules
assert server_guard._one_blas_thread()
from threadpoolctl import threadpool_info
print([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
"""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[1]"
