"""A loopback HTTP server that plays the parts of the Hugging Face Hub API that `huggingface_hub.HfApi`
uses to create a repo, commit files and list them, so pushes are tested through the real client library.

    with FakeHub() as hub:
        HfApi(token="hf_test", endpoint=hub.endpoint).upload_file(...)
        hub.repos["org/model-b"].files  # {path_in_repo: bytes}

Every file is committed as a regular git blob (the preupload answer never asks for LFS or Xet), commits are
atomic (a commit either lands whole or not at all), and requests without `Authorization: Bearer <token>`
get a 401 like the real Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml

REPO = r"(?P<type>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)"
PREUPLOAD = re.compile(rf"^/api/{REPO}/preupload/(?P<rev>[^/]+)$")
COMMIT = re.compile(rf"^/api/{REPO}/commit/(?P<rev>[^/]+)$")
TREE = re.compile(rf"^/api/{REPO}/tree/(?P<rev>[^/]+)(?P<path>/.*)?$")


@dataclass
class FakeRepo:
    repo_type: str
    private: bool
    sdk: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)


class FakeHub:
    def __init__(self, token: str = "hf_test"):
        self.token = token
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.validated: list[str] = []  # README cards sent to validate-yaml
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: object, headers: dict | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {hub.token}":
                    return True
                self.reply(401, {"error": "Invalid credentials in Authorization header"})
                return False

            def body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_POST(self):
                path = urlparse(self.path).path
                hub.requests.append(("POST", path))
                data = self.body()
                if not self.authorised():
                    return
                if path == "/api/repos/create":
                    spec = json.loads(data)
                    repo_id = f"{spec['organization']}/{spec['name']}" if spec.get("organization") else spec["name"]
                    with hub._lock:
                        if repo_id in hub.repos:
                            return self.reply(409, {"error": "You already created this repo", "url": repo_id})
                        private = spec.get("visibility") == "private" or spec.get("private") is True
                        hub.repos[repo_id] = FakeRepo(spec.get("type") or "model", private, spec.get("sdk"))
                    return self.reply(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
                if path == "/api/validate-yaml":  # the README card's front matter, checked before a commit
                    content = json.loads(data)["content"]
                    hub.validated.append(content)
                    try:
                        front = content.split("---", 2)[1] if content.startswith("---") else ""
                        if not isinstance(yaml.safe_load(front) or {}, dict):
                            raise yaml.YAMLError("front matter is not a mapping")
                    except yaml.YAMLError as exc:
                        return self.reply(400, {"errors": [{"message": str(exc)}]})
                    return self.reply(200, {"errors": [], "warnings": []})
                if match := PREUPLOAD.match(path):
                    if hub.repo(match) is None:
                        return self.not_found()
                    files = json.loads(data)["files"]
                    answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                    return self.reply(200, {"files": answer})
                if match := COMMIT.match(path):
                    repo = hub.repo(match)
                    if repo is None:
                        return self.not_found()
                    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
                    header = next(line["value"] for line in lines if line["key"] == "header")
                    added = {
                        line["value"]["path"]: base64.b64decode(line["value"]["content"])
                        for line in lines
                        if line["key"] == "file"
                    }
                    oid = hashlib.sha1(data).hexdigest()
                    with hub._lock:
                        repo.files.update(added)
                        repo.commits.append({"summary": header["summary"], "files": sorted(added), "oid": oid})
                    url = f"{hub.endpoint}/{match['repo']}/commit/{oid}"
                    return self.reply(200, {"commitUrl": url, "commitOid": oid, "pullRequestUrl": None})
                return self.not_found()

            def do_GET(self):
                path = urlparse(self.path).path
                hub.requests.append(("GET", path))
                if not self.authorised():
                    return
                if match := TREE.match(path):
                    repo = hub.repo(match)
                    if repo is None:
                        return self.not_found()
                    prefix = unquote(match["path"] or "/").lstrip("/")
                    entries = [
                        {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                        for p, b in sorted(repo.files.items())
                        if p.startswith(prefix)
                    ]
                    return self.reply(200, entries)
                return self.not_found()

            def not_found(self):
                self.reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def repo(self, match: re.Match) -> FakeRepo | None:
        repo = self.repos.get(match["repo"])
        return repo if repo is not None and repo.repo_type == match["type"] else None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
