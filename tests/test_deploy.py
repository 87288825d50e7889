"""More than one server (deploy/): two real Streamlit replicas behind a real nginx, driven by real Chromium.

The main test starts ``python -m deploy.run`` with 2 replicas and checks, through the proxy only:
the load test's sessions all get the right answers; every request of a browser, its first included,
reaches one replica (nginx's access log says which); both replicas get visitors; when one replica is
killed mid-run its visitors get a working Draw page from the other (right answers, no error on the
page) while the other replica's visitors keep their sessions untouched; and SIGTERM stops nginx and
every replica with all they started. The cheaper tests cover the configuration and the messages.

Without nginx or Chromium these tests are skipped, except in CI (env CI set), where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy import run as deploy

CONNECTED = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
# Records every change of the page's connection to its server (Streamlit's own state on stApp).
WATCH_CONNECTION = """() => {
  window.__states = [];
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => window.__states.push(app.getAttribute('data-test-connection-state')))
    .observe(app, {attributes: true, attributeFilter: ['data-test-connection-state']});
}"""
LOG_LINE = re.compile(r'^\S+ (?P<status>\d+) "(?P<method>\S+) (?P<path>\S+) [^"]*" upstream=(?P<upstream>.*?) '
                      r"upstream_status=.*? affinity=(?P<affinity>\S+)$")


@pytest.fixture(scope="module")
def nginx():
    """nginx's path. Missing: a skip, except in CI (env CI set), where it fails."""
    found = shutil.which(deploy.NGINX)
    if not found:
        reason = "nginx is not installed: apt-get install -y nginx"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so these tests must run)")
        pytest.skip(reason)
    return found


def access_log(run_dir: Path) -> list[dict]:
    """nginx's access log: one dict per request, ``upstreams`` being every replica tried, in order."""
    rows = []
    for line in (run_dir / "access.log").read_text().splitlines():
        m = LOG_LINE.match(line)
        assert m, f"unexpected access log line: {line}"
        rows.append(m.groupdict() | {"upstreams": m["upstream"].split(", ")})
    return rows


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process it started, still alive."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        found.add(p)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


# --- pieces -------------------------------------------------------------------------------------------------
def test_generated_config_is_valid_nginx(nginx, tmp_path):
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(deploy.nginx_config(tmp_path, "127.0.0.1:8080", [9001, 9002, 9003]))
    out = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    text = conf.read_text()
    assert not re.search(r"@[A-Z]+@", text)  # every field filled in
    assert [int(p) for p in re.findall(r"server 127\.0\.0\.1:(\d+) max_fails=1", text)] == [9001, 9002, 9003]
    assert "hash $affinity consistent;" in text and "proxy_next_upstream error timeout;" in text


def test_replicas_share_one_cookie_secret_with_xsrf_on_and_never_on_the_command_line(tmp_path):
    env = deploy.replica_env("s3cret", tmp_path)
    assert env["STREAMLIT_SERVER_COOKIE_SECRET"] == "s3cret"
    assert env["STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION"] == "true"
    assert env["MNIST_ARTIFACTS"] == str(tmp_path.resolve())
    command = deploy.replica_command(8123)
    assert "s3cret" not in " ".join(command) and command[command.index("--server.address") + 1] == "127.0.0.1"


def test_a_taken_port_is_refused_by_name_before_anything_starts(nginx, capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code = deploy.main(["--port", str(port), "--run-dir", str(tmp_path / "run"), "--nginx", nginx])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err
    assert not (tmp_path / "run").exists()


def test_missing_nginx_is_a_clear_message(capsys, tmp_path):
    code = deploy.main(["--port", "0", "--nginx", str(tmp_path / "no-nginx")])
    err = capsys.readouterr().err
    assert code == 2 and "nginx not found" in err and "apt-get install -y nginx" in err
    assert "Traceback" not in err


def test_bad_arguments_are_usage_errors(capsys):
    for argv in (["--replicas", "0"], ["--port", "70000"]):
        with pytest.raises(SystemExit) as e:
            deploy.main(argv)
        assert e.value.code == 2
    assert "--replicas must be at least 1" in capsys.readouterr().err


# --- the whole path -----------------------------------------------------------------------------------------
def test_two_replicas_behind_nginx_share_the_load_and_survive_one_dying(nginx, chromium, best_artifacts, tmp_path):
    from tools import browser, load

    folder, check = best_artifacts
    run_dir = tmp_path / "run"
    output = tmp_path / "deploy.out"
    with open(output, "w") as out:
        runner = subprocess.Popen([sys.executable, "-m", "deploy.run", "--replicas", "2", "--port", "0",
                                   "--run-dir", str(run_dir), "--artifacts", str(folder)],
                                  cwd=deploy.ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "deployment.json").exists():
            assert runner.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        info = json.loads((run_dir / "deployment.json").read_text())
        url = info["url"]
        ports = [f"127.0.0.1:{r['port']}" for r in info["replicas"]]
        assert "ready: " + url in output.read_text()

        # 1. The load test through the proxy: every session, every answer.
        result_file = tmp_path / "load.json"
        code = load.main(["--url", url, "--sessions", "4", "--rounds", "2", "--json", str(result_file),
                          "--timeout", "120"] + ([] if check else ["--no-check-digits"]))
        result = json.loads(result_file.read_text())
        assert code == 0, {r["session"]: r["errors"] for r in result["sessions"] if r["errors"]}
        assert result["summary"]["predictions"] == 8 and result["summary"]["failed_sessions"] == 0
        if check:
            assert all(r["shown"] == [[str(d)] * 3 for d in r["digits"]] for r in result["sessions"])

        # 2. Visitors on both replicas, then one replica killed mid-run.
        victim, survivor = info["replicas"][0], ports[1]
        report = asyncio.run(_visit_and_kill(browser, url, run_dir, ports, victim["pid"], check))
        assert not report["problems"], report["problems"]
        by_session = report["replica"]

        # nginx logs a WebSocket when it closes, a moment after the browser has gone.
        for affinity in by_session:
            asyncio.run(logged(run_dir, lambda r, a=affinity: r["affinity"] == a and r["path"] == "/_stcore/stream"
                               and r["upstreams"][-1] == survivor))
        rows = access_log(run_dir)
        assert set(by_session.values()) == set(ports), "both replicas must get visitors"
        # No visitor saw nginx fail (a dead replica's requests went to the other), and any image served from
        # /media came from the replica that made it (Streamlit keeps /media in the process's memory). The Draw
        # page now sends its 28x28 images inline, so there may be none.
        assert not [r for r in rows if int(r["status"]) >= 500]
        media = [r for r in rows if r["path"].startswith("/media/")]
        assert all(r["status"] == "200" for r in media), [r for r in media if r["status"] != "200"]
        # Both replicas served the load test's and these sessions' WebSockets (logged as they closed).
        streams = [r for r in rows if r["path"] == "/_stcore/stream" and r["status"] == "101"]
        assert {r["upstreams"][-1] for r in streams} == set(ports)
        for affinity, replica in by_session.items():
            mine = [r["upstreams"][-1] for r in streams if r["affinity"] == affinity]
            if replica == survivor:  # untouched: one WebSocket for the whole visit
                assert mine == [survivor], (affinity, mine)
            else:  # its WebSocket ended with the replica; it reconnected to the other
                assert mine[0] == ports[0] and mine[-1] == survivor and len(mine) >= 2, (affinity, mine)
        assert re.search(rf"replica 0 \(port {victim['port']}\) exited with -9", output.read_text())

        # 3. SIGTERM: everything it started stops, nothing is left behind.
        tree = process_tree(runner.pid)
        assert len(tree) >= 4, tree  # the runner, nginx's master and worker, the surviving replica
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(60) == 0, output.read_text()
        time.sleep(0.5)
        left = sorted(p for p in tree if alive(p))
        assert not left, [Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in left]
        assert output.read_text().rstrip().endswith("stopped: nginx and every replica")
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 2):
            pass
    finally:
        if runner.poll() is None:
            runner.kill()  # its children get SIGTERM from the kernel (PR_SET_PDEATHSIG)
            runner.wait()


async def logged(run_dir: Path, match, timeout_s: float = 10) -> dict:
    """The first access log row ``match`` accepts, once nginx has written it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [r for r in access_log(run_dir) if match(r)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "nginx did not log the request"
        await asyncio.sleep(0.1)


async def _visit_and_kill(browser, url, run_dir, ports, victim_pid, check) -> dict:
    """Browsers until both replicas have two visitors; each draws; the first replica is killed; each draws
    again. Returns which replica each visitor (by its affinity cookie) had, and every problem seen."""
    problems, replica, visitors = [], {}, []
    async with browser.launch_chromium() as chromium:
        counts = dict.fromkeys(ports, 0)
        for _ in range(24):  # nginx's choice is random per visitor: P(fewer than 2 on one) is tiny
            if min(counts.values()) >= 2:
                break
            context = await chromium.new_context(viewport={"width": 1280, "height": 900})
            await context.request.get(f"{url}/_stcore/health")  # a first visit, without the cookie
            affinity = next(c["value"] for c in await context.cookies() if c["name"] == deploy.AFFINITY_COOKIE)
            where = (await logged(run_dir, lambda r, a=affinity: r["affinity"] == a))["upstreams"][0]
            if counts[where] >= 2:
                await context.close()
                continue
            counts[where] += 1
            replica[affinity] = where
            visitors.append((affinity, context, await context.new_page()))
        assert min(counts.values()) >= 2, counts

        async def draw(page, digit, label):
            await browser.clear_canvas(page)
            await page.locator(browser.ANSWER_DIGITS).first.wait_for(state="detached", timeout=120_000)
            await browser.draw(page, browser.DIGITS[digit])
            shown = await browser.read_predictions(page, 120_000)
            if len(shown) != 3 or (check and shown != [str(digit)] * 3):
                problems.append(f"{label}: drew a {digit}, the page shows {shown}")
            problems.extend(f"{label}: the page shows {p}" for p in await browser.page_problems(page))

        async def first_visit(affinity, page):
            await browser.open_draw(page, url, 120_000)
            await browser.draw(page, browser.DIGITS[1])
            shown = await browser.read_predictions(page, 120_000)
            if check and shown != ["1"] * 3:
                problems.append(f"{affinity} before: drew a 1, the page shows {shown}")

        await asyncio.gather(*(first_visit(a, p) for a, _, p in visitors))
        # Sticky, the first request included: each visitor's requests so far all went to one replica.
        for affinity, where in replica.items():
            went = {r["upstreams"][0] for r in access_log(run_dir) if r["affinity"] == affinity}
            assert went == {where}, f"visitor {affinity} was served by {went}, not only by {where}"
        for _, _, page in visitors:
            await page.evaluate(WATCH_CONNECTION)
        os.killpg(victim_pid, signal.SIGKILL)  # a crash: no goodbye to its browsers

        async def after_kill(affinity, page):
            label = f"{affinity} after the kill"
            if replica[affinity] == ports[0]:
                # Its page notices, reconnects through nginx (to the other replica) and reruns there;
                # like a person, it waits for the page to be back before drawing again.
                await page.wait_for_function("() => window.__states.length > 0", timeout=60_000)
                await page.wait_for_selector(CONNECTED, timeout=120_000)
                await browser.wait_idle(page, 120_000)
            await draw(page, 7, label)
            states = await page.evaluate("window.__states")
            if replica[affinity] != ports[0] and states:
                problems.append(f"{label}: its connection went {states}, on a replica that did not die")
            if replica[affinity] == ports[0] and states[-1:] != ["CONNECTED"]:
                problems.append(f"{label}: its connection went {states}")

        for affinity, _, page in visitors:
            if replica[affinity] != ports[0]:  # still on its replica: what it showed is still there
                shown = [s.strip() for s in await page.locator(browser.ANSWER_DIGITS).all_inner_texts()]
                if check and shown != ["1"] * 3:
                    problems.append(f"{affinity} after the kill: its answers changed to {shown}")
        await asyncio.gather(*(after_kill(a, p) for a, _, p in visitors))
        for affinity, context, page in visitors:
            text = await page.locator("body").inner_text()
            problems.extend(f"{affinity}: {w!r} on the page" for w in ("Connection error", "Traceback") if w in text)
            await context.close()
    return {"replica": replica, "problems": problems}


def test_killing_the_runner_itself_leaves_nothing_behind(nginx, best_artifacts, tmp_path):
    """SIGKILL gives the runner no chance to stop anything: the kernel sends its children SIGTERM."""
    run_dir, output = tmp_path / "run", tmp_path / "deploy.out"
    with open(output, "w") as out:
        runner = subprocess.Popen([sys.executable, "-m", "deploy.run", "--replicas", "1", "--port", "0", "--run-dir",
                                   str(run_dir), "--artifacts", str(best_artifacts[0])],
                                  cwd=deploy.ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not (run_dir / "deployment.json").exists():
            assert runner.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        tree = process_tree(runner.pid)
        assert len(tree) >= 4, tree  # the runner, nginx's master and worker, the replica
        runner.kill()
        runner.wait()
        deadline = time.monotonic() + 30
        while [p for p in tree if alive(p)] and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in tree if alive(p)]
        assert not left, [Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in left]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
