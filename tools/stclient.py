"""A Streamlit session without a browser: the app's own WebSocket protocol, spoken directly, for tests that
send what a browser would never send (a forged message, a flood of uploads) and read what the server answers.

    async with StClient.connect(server.url) as s:     # one session, as one browser tab
        msgs = await s.run("draw")                     # run a page; its ForwardMsgs up to script_finished
        s.session_id, s.new_session.config.toolbar_mode
        await s.send(BackMsg(clear_cache=True))        # anything a client may send
        status = s.upload(b"...", "digit.png")         # PUT to the upload endpoint, as the file uploader does

It speaks only what Streamlit's own front end speaks: the XSRF cookie from the first page load, sent back
in the WebSocket's subprotocol and the upload's header; protobuf BackMsgs in, ForwardMsgs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.cookies
import urllib.request
import uuid

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

XSRF_COOKIE = "_streamlit_xsrf"


def xsrf_cookie(url: str) -> str | None:
    """The XSRF cookie the server sets, as the front end gets it (None when XSRF protection is off)."""
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as r:  # the front end asks it first
        for header in r.headers.get_all("Set-Cookie") or []:
            jar = http.cookies.SimpleCookie()
            jar.load(header)
            if XSRF_COOKIE in jar:
                return jar[XSRF_COOKIE].value
    return None


class StClient:
    """One session on a running app; use ``StClient.connect`` (an async context manager)."""

    def __init__(self, url: str, ws, cookie: str | None):
        self.url, self.ws, self.cookie = url, ws, cookie
        self.new_session = None  # the last NewSession message: config, theme, session id
        self.session_id: str | None = None
        self.received: list[ForwardMsg] = []  # everything, in order

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, cookie: str | None = None, session_id: str | None = None):
        """Open a session as a browser tab would; ``cookie`` shares one browser's XSRF cookie between
        sessions (tabs), ``session_id`` asks to resume a disconnected session."""
        import websockets

        cookie = cookie if cookie is not None else await asyncio.to_thread(xsrf_cookie, url)
        host = url.split("://", 1)[1]
        protocols = ["streamlit", cookie or "no-xsrf-token", *([session_id] if session_id else [])]
        headers = {"Origin": url}
        if cookie:
            headers["Cookie"] = f"{XSRF_COOKIE}={cookie}"
        async with websockets.connect(f"ws://{host}/_stcore/stream", subprotocols=protocols,
                                      additional_headers=headers, max_size=2**28) as ws:
            yield cls(url, ws, cookie)

    async def send(self, msg: BackMsg) -> None:
        await self.ws.send(msg.SerializeToString())

    async def receive(self, timeout: float = 120) -> ForwardMsg:
        msg = ForwardMsg()
        msg.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
        self.received.append(msg)
        if msg.WhichOneof("type") == "new_session":
            self.new_session = msg.new_session
            self.session_id = msg.new_session.initialize.session_id or self.session_id
        return msg

    async def until(self, kind: str, timeout: float = 120) -> list[ForwardMsg]:
        """Every message up to and including the first of type ``kind``."""
        out = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.receive(max(0.1, deadline - loop.time()))
            out.append(msg)
            if msg.WhichOneof("type") == kind:
                return out

    async def run(self, page: str = "", widget_states=None, timeout: float = 120) -> list[ForwardMsg]:
        """Run a page (its URL path; "" is Home) and return its messages up to the end of the run."""
        state = ClientState(query_string="", page_name=page)
        if widget_states is not None:
            state.widget_states.CopyFrom(widget_states)
        await self.send(BackMsg(rerun_script=state))
        while True:
            msgs = await self.until("script_finished", timeout)
            if msgs[-1].script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                return msgs

    async def sync(self, timeout: float = 60) -> None:
        """Wait until the server has handled everything sent so far (it answers messages in order)."""
        request_id = uuid.uuid4().hex
        await self.send(BackMsg(file_urls_request={"request_id": request_id, "file_names": []}))
        while True:
            msg = await self.receive(timeout)
            if msg.WhichOneof("type") == "file_urls_response" and msg.file_urls_response.response_id == request_id:
                return

    def upload(self, data: bytes, name: str = "digit.png", file_id: str | None = None) -> int:
        """PUT one file to this session's upload endpoint, as st.file_uploader does; the HTTP status (a server
        that refuses early, from the declared length, is heard even if it closes before the body is sent)."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": self.url,
                   "Content-Length": str(len(body))}
        if self.cookie:
            headers |= {"X-Xsrftoken": self.cookie, "Cookie": f"{XSRF_COOKIE}={self.cookie}"}
        host = self.url.split("://", 1)[1]
        conn = http.client.HTTPConnection(host, timeout=60)
        try:
            conn.putrequest("PUT", f"/_stcore/upload_file/{self.session_id}/{file_id or uuid.uuid4()}")
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            with contextlib.suppress(ConnectionError):  # refused early: the answer is already there
                conn.send(body)
            return conn.getresponse().status
        finally:
            conn.close()


def elements(msgs: list[ForwardMsg]) -> list:
    """The elements a run drew (Delta.new_element), in order."""
    return [m.delta.new_element for m in msgs if m.WhichOneof("type") == "delta"
            and m.delta.WhichOneof("type") == "new_element"]


def texts(msgs: list[ForwardMsg], kind: str) -> list[str]:
    """The text of every element of one kind a run drew: "alert" (st.error/info/...), "markdown", "exception"."""
    out = []
    for e in elements(msgs):
        if e.WhichOneof("type") != kind:
            continue
        part = getattr(e, kind)
        out.append(part.body if hasattr(part, "body") else f"{part.type}: {part.message}\n" + "\n".join(
            part.stack_trace))
    return out
