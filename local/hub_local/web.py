"""Static server for the embeddable pages (web/) and Swagger UI, on its own origin so the browser checks CORS."""

from __future__ import annotations

import importlib.util
import mimetypes
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from hub_local.cfn import load_yaml
from sandboxes.httpserver import LoopbackHandler, ServerThread

# The pages name the API by this base URL (make run's default); served pages get the running gateway's instead.
API_BASE_IN_PAGES: Final = "http://localhost:3000"
DOCS_PREFIX: Final = "/docs/"
# Swagger UI from the swagger-ui-py package (its assets ship in the wheel; nothing comes from a CDN).
_DOCS_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner hub API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "%s/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""
_SECURITY_HEADERS: Final = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


def swagger_ui_dir() -> Path | None:
    """Where swagger-ui-py keeps Swagger UI's files; None when the package is not installed."""
    # Found, not imported: only its static files are used.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "static"


class WebServer:
    """Serves `root` on 127.0.0.1:`port` (0 picks a free port), with the pages pointed at `api_url`."""

    def __init__(self, root: Path, *, port: int = 0, docs_dir: Path | None = None) -> None:
        self.root = root.resolve()
        self.docs_dir = docs_dir.resolve() if docs_dir is not None else None
        self.api_url = API_BASE_IN_PAGES
        self._serving = ServerThread(_Handler, self, name="hub-local-web", port=port)
        self.port: int = self._serving.port
        self.url = self._serving.url

    @property
    def origins(self) -> tuple[str, str]:
        """The origins a browser sends from these pages (either host name reaches them)."""
        return self.url, f"http://localhost:{self.port}"

    def pages(self) -> dict[str, str]:
        """The pages worth opening, by name, for the run banner."""
        found = {path.stem: f"{self.url}/{path.name}" for path in sorted(self.root.glob("*.html"))}
        if self.docs_dir is not None:
            found["api docs (Swagger UI)"] = f"{self.url}{DOCS_PREFIX}"
        return found

    def start(self, api_url: str) -> WebServer:
        self.api_url = api_url.rstrip("/")
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def resolve(self, target: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of `target`."""
        path = unquote(urlsplit(target).path)
        if path == "/":
            path = "/index.html"
        if self.docs_dir is not None and path in ("/docs", DOCS_PREFIX):
            return 200, "text/html; charset=utf-8", (_DOCS_PAGE % self.api_url).encode()
        if self.docs_dir is not None and path.startswith(DOCS_PREFIX):
            file = _inside(self.docs_dir, path.removeprefix(DOCS_PREFIX))
        else:
            file = _inside(self.root, path.lstrip("/"))
        if file is None:
            return 404, "text/plain; charset=utf-8", b"not found\n"
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        body = file.read_bytes()
        if content_type == "text/html":
            body = body.replace(API_BASE_IN_PAGES.encode(), self.api_url.encode())
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        return 200, content_type, body


def _inside(root: Path, relative: str) -> Path | None:
    """The regular file `relative` names under `root`; None for anything else (.., a directory, a dot file)."""
    if any(part.startswith(".") for part in relative.split("/")):
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


class _Handler(LoopbackHandler):
    server_version = "hub-local-web"
    log_prefix = "web"
    do_HEAD = LoopbackHandler._serve

    def serve(self) -> None:
        if self.command in ("GET", "HEAD"):
            status, content_type, body = self.server.owner.resolve(self.path)
            self._send(status, content_type, body)
        else:
            self._send(405, "text/plain; charset=utf-8", b"only GET and HEAD\n", {"Allow": "GET, HEAD"})

    def _send(self, status: int, content_type: str, body: bytes, extra: Mapping[str, str] | None = None) -> None:
        self.answer(status, [("Content-Type", content_type), *_SECURITY_HEADERS, *(extra or {}).items()], body)


def with_page_origins(template_path: Path, overrides: Mapping[str, str], origins: Iterable[str]) -> dict[str, str]:
    """The parameter overrides with the pages' `origins` added to CorsAllowedOrigins, as on AWS (unchanged when
    the template declares no such parameter)."""
    declared = load_yaml(template_path).get("Parameters", {}).get("CorsAllowedOrigins")
    if declared is None:
        return dict(overrides)
    current = overrides.get("CorsAllowedOrigins", str(declared.get("Default", "")))
    listed = [origin for origin in current.split(",") if origin.strip()]
    return {**overrides, "CorsAllowedOrigins": ",".join([*listed, *origins])}
