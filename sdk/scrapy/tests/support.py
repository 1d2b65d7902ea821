"""Local servers and helpers for the estela_scrapy tests.

Every server listens on 127.0.0.1 on a free port and runs in a thread of the
test process, except Redis, which runs as a redis-server child process.
"""

import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import redis

REPO_ROOT = Path(__file__).resolve().parents[3]
SDK_DIR = REPO_ROOT / "sdk" / "scrapy"
BIN_DIR = SDK_DIR / "bin"
TESTDATA_DIR = REPO_ROOT / "core" / "internal" / "e2e" / "testdata"
SITE_DIR = TESTDATA_DIR / "site"
PROJECT_DIR = TESTDATA_DIR / "project"
EXPECTED = json.loads((SITE_DIR / "expected.json").read_text(encoding="utf-8"))

# The Debian interpreter that has Scrapy, which the commands target.
PYTHON = "/usr/bin/python3"
REDIS_SERVER = "/usr/bin/redis-server"

JOB_KEY = "41.7.0b5e8a52-9d1c-4c4e-8f0e-2f3c5a6b7c8d"
JID, SID, PID = JOB_KEY.split(".")
TOKEN = "3f2a9c1b7d8e4f6a0b1c2d3e4f5a6b7c8d9e0f1a"


def run_command(name, env, cwd=PROJECT_DIR, args=(), timeout=60):
    """Run bin/<name> with the Debian Python and return the CompletedProcess."""
    # No bytecode caches: the commands import the test project from testdata.
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    full_env.update(env)
    return subprocess.run(
        [PYTHON, str(BIN_DIR / name), *args],
        cwd=str(cwd),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def job_info(api_url, spider, args=None, env_vars=None):
    return json.dumps(
        {
            "spider": spider,
            "api_host": api_url,
            "auth_token": TOKEN,
            "key": JOB_KEY,
            "collection": JOB_KEY,
            "args": args or {},
            "env_vars": env_vars or {},
            "unique": "False",
        }
    )


class _QuietHandlerMixin:
    def log_message(self, format, *args):
        pass


class SiteServer:
    """Static file server for testdata/site.

    delay slows every response; with a gate, every page but the first waits until the gate is
    set (at most 60 s), so a test can act while a crawl is known to be on page 1.
    """

    def __init__(self, delay=0.0, gate=None):
        class Handler(_QuietHandlerMixin, http.server.SimpleHTTPRequestHandler):
            def do_GET(handler):
                time.sleep(delay)
                if gate is not None and not handler.path.endswith("/1.html"):
                    gate.wait(timeout=60)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(SITE_DIR))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()


class FakeAPI:
    """Records what the job side sends to the estela API.

    patch_failures maps a status to the HTTP codes returned to the first
    PATCH attempts with that status, in order. fail_after_store lists record
    types whose first batch is stored and then gets a 503 response, as if
    the response were lost. put_status is the code every deploy PUT gets.
    """

    job_path = f"/api/projects/{PID}/spiders/{SID}/jobs/{JID}"

    def __init__(self, patch_failures=None, fail_after_store=(), put_status=200):
        self.patch_failures = {status: list(codes) for status, codes in (patch_failures or {}).items()}
        self.fail_after_store = set(fail_after_store)
        self.put_status = put_status
        self.lock = threading.Lock()
        self.events = []  # (sequence, kind, details), in arrival order
        self.patches = []  # dicts with "fields", "code", "authorization", "content_type"
        # on_patch, when set, is called with the fields of each PATCH as it arrives.
        self.on_patch = None
        self.ingest_attempts = []  # dicts with "kind", "batch_id", "code", "records"
        self.stored_batches = {}  # batch_id -> body, in order of storage
        self.puts = []  # dicts with "path", "body", "authorization", "content_type"
        self.unexpected = []  # "METHOD path" of requests the fake does not know

        api = self

        class Handler(_QuietHandlerMixin, http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PATCH(handler):
                api._handle(handler, "PATCH")

            def do_POST(handler):
                api._handle(handler, "POST")

            def do_PUT(handler):
                api._handle(handler, "PUT")

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    def records(self, kind):
        """Return the stored records of one type, in the order their batches were stored."""
        with self.lock:
            bodies = list(self.stored_batches.values())
        return [record for body in bodies if body["type"] == kind for record in body["records"]]

    def patch_statuses(self):
        with self.lock:
            return [patch["fields"].get("status") for patch in self.patches]

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        path = urllib.parse.urlsplit(handler.path).path
        with self.lock:
            code, answer = self._route(method, path, raw, handler.headers)
        body = json.dumps(answer).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _route(self, method, path, raw, headers):
        # Called with self.lock held.
        authorization = headers.get("Authorization")
        content_type = headers.get("Content-Type", "")
        sequence = len(self.events)

        if method == "PATCH" and path == self.job_path:
            fields = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
            failures = self.patch_failures.get(fields.get("status"), [])
            code = failures.pop(0) if failures else 200
            self.patches.append(
                {"fields": fields, "code": code, "authorization": authorization, "content_type": content_type}
            )
            self.events.append((sequence, "patch", fields.get("status")))
            if self.on_patch is not None:
                self.on_patch(fields)
            if code == 400:
                return code, {"error": "Job is stopped"}
            return code, {"status": fields.get("status")} if code == 200 else {"detail": "unavailable"}

        if method == "POST" and path == self.job_path + "/ingest":
            body = json.loads(raw)
            batch_id = body["batch_id"]
            duplicate = batch_id in self.stored_batches
            if duplicate:
                code, answer = 200, {"stored": 0, "duplicate": True}
            else:
                self.stored_batches[batch_id] = body
                code, answer = 201, {"stored": len(body["records"]), "duplicate": False}
                if body["type"] in self.fail_after_store:
                    self.fail_after_store.discard(body["type"])
                    code, answer = 503, {"detail": "unavailable"}
            self.ingest_attempts.append(
                {"kind": body["type"], "batch_id": batch_id, "code": code, "records": len(body["records"]),
                 "authorization": authorization, "content_type": content_type}
            )
            self.events.append((sequence, "ingest", body["type"]))
            return code, answer

        if method == "PUT" and re.fullmatch(r"/api/projects/[0-9a-z-]+/deploys/\d+", path):
            self.puts.append(
                {"path": path, "body": json.loads(raw), "authorization": authorization, "content_type": content_type}
            )
            self.events.append((sequence, "put", path))
            return self.put_status, {"detail": "recorded"}

        self.unexpected.append(f"{method} {path}")
        return 404, {"detail": "Not found."}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 without persistence."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = None

    def __enter__(self):
        self._process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.__exit__()
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)

    def __exit__(self, *exc_info):
        self._process.terminate()
        self._process.wait(timeout=10)

    def client(self):
        return redis.Redis.from_url(self.url, decode_responses=True)


class HashPoller:
    """Thread that reads a Redis hash every few milliseconds and keeps what it saw."""

    def __init__(self, client, key, interval=0.05):
        self.snapshots = []
        self._client = client
        self._key = key
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            snapshot = self._client.hgetall(self._key)
            if snapshot:
                self.snapshots.append(snapshot)
            self._stop.wait(self._interval)


def copy_project(destination):
    """Copy the test project into destination, without bytecode caches."""
    shutil.copytree(PROJECT_DIR, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return Path(destination)
