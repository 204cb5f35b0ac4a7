"""API Gateway HTTP API's translation of HTTP to Lambda and back: route matching, payload 2.0 events, CORS."""

# Apart from gateway.py (the server and the local control routes) so that both stay readable, and so that tests can
# hold the translation to AWS's without a socket.

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from hub_local.cfn import ACCOUNT_ID
from hub_local.specs import CorsConfig, HttpRoute
from hub_local.template import LOCAL_API_ID

Headers = list[tuple[str, str]]

INTERNAL_ERROR: Final = b'{"message":"Internal Server Error"}'

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES: Final = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/xhtml+xml",
    "application/graphql",
)
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})


# ---------------------------------------------------------------------------------------------- route matching


@dataclass(frozen=True)
class RouteMatch:
    """The route a request matched and the values of its path variables (URL-decoded)."""

    route: HttpRoute
    path_parameters: dict[str, str]


def _match_path(pattern: str, path: str) -> dict[str, str] | None:
    pattern_segments = pattern.split("/")[1:]
    path_segments = path.split("/")[1:]
    parameters: dict[str, str] = {}
    for index, segment in enumerate(pattern_segments):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = "/".join(path_segments[index:])
            if not rest:
                return None
            parameters[segment[1:-2]] = unquote(rest)
            return parameters
        if index >= len(path_segments):
            return None
        value = path_segments[index]
        if segment.startswith("{") and segment.endswith("}"):
            if not value:
                return None
            parameters[segment[1:-1]] = unquote(value)
        elif unquote(value) != segment:
            return None
    return parameters if len(path_segments) == len(pattern_segments) else None


def specificity(route: HttpRoute) -> tuple[int, int, int, int]:
    """Sort key, most specific first: API Gateway prefers literal segments, then variables, then greedy ones."""
    if route.path is None:
        return (3, 0, 0, 0)
    segments = route.path.split("/")[1:]
    literals = sum(1 for segment in segments if not segment.startswith("{"))
    greedy = 1 if segments and segments[-1].endswith("+}") else 0
    return (greedy, -literals, -len(segments), 1 if route.method == "ANY" else 0)


def match_route(routes: Iterable[HttpRoute], method: str, path: str) -> RouteMatch | None:
    """The most specific route for `method path`, as API Gateway picks it; None when nothing matches."""
    candidates: list[RouteMatch] = []
    for route in routes:
        if route.method not in ("ANY", method):
            continue
        parameters: dict[str, str] | None = {} if route.path is None else _match_path(route.path, path)
        if parameters is not None:
            candidates.append(RouteMatch(route, parameters))
    return min(candidates, key=lambda match: specificity(match.route), default=None)


# ----------------------------------------------------------------------------------------- payload format 2.0


def is_text_content_type(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text rather than base64."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith(("+json", "+xml"))


def _request_time(epoch_seconds: float) -> str:
    moment = time.gmtime(epoch_seconds)
    return time.strftime(f"%d/{_MONTHS[moment.tm_mon - 1]}/%Y:%H:%M:%S +0000", moment)


def new_request_id() -> str:
    """An id shaped like API Gateway's (base64 of 10 random bytes)."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


def build_event(
    *,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    match: RouteMatch,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    now = time.time() if now is None else now
    split = urlsplit(target)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            # Format 2.0 moves cookies out of the headers into their own list.
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    host = lowered.get("host", "127.0.0.1")
    domain = host.split(":", 1)[0]
    lowered.setdefault("x-forwarded-for", source_ip)
    lowered.setdefault("x-forwarded-proto", "http")
    lowered.setdefault("x-forwarded-port", host.split(":", 1)[1] if ":" in host else "80")
    lowered.setdefault("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")
    query: dict[str, str] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value

    route_key = match.route.route_key
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": split.path,
        "rawQueryString": split.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = lowered
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": method,
            "path": split.path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": request_id or new_request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": _request_time(now),
        "timeEpoch": int(now * 1000),
    }
    if match.route.authorizer == "AWS_IAM":
        # No SigV4 locally: the gateway listens on loopback only and stands in for IAM with this machine's caller.
        event["requestContext"]["authorizer"] = {"iam": LOCAL_IAM_CALLER}
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    text = is_text_content_type(lowered.get("content-type"))
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if text else base64.b64encode(body).decode()
    event["isBase64Encoded"] = bool(body) and not text
    return event


LOCAL_IAM_CALLER: Final[Mapping[str, Any]] = {
    "accessKey": "LOCALACCESSKEY",
    "accountId": ACCOUNT_ID,
    "callerId": "LOCAL-DEVELOPER",
    "cognitoIdentity": None,
    "principalOrgId": None,
    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local-developer",
    "userId": "LOCAL-DEVELOPER",
}


@dataclass
class HttpResponse:
    """What the gateway writes back."""

    status: int
    headers: Headers
    body: bytes


def json_response(status: int, body: bytes) -> HttpResponse:
    """A JSON response of the gateway itself (not of a function)."""
    return HttpResponse(status, [("Content-Type", "application/json")], body)


def to_http_response(result: Any) -> HttpResponse:
    """Turn a handler's result into an HTTP response the way HTTP APIs read payload 2.0 responses."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # No statusCode: API Gateway assumes 200 and sends the result itself as JSON.
        return json_response(200, json.dumps(result).encode())
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return json_response(500, INTERNAL_ERROR)
    headers: Headers = [
        (str(name), str(value))
        for name, value in (result.get("headers") or {}).items()
        if str(name).lower() not in _HOP_BY_HOP
    ]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body")
    if body is None:
        payload = b""
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
    return HttpResponse(status, headers, payload)


# ------------------------------------------------------------------------------------------------------ CORS


class CorsPolicy:
    """An HttpApi's CorsConfiguration, applied as API Gateway applies it."""

    def __init__(self, config: CorsConfig, extra_origins: Iterable[str] = ()) -> None:
        self.config = config
        self.origins = {_normal_origin(origin) for origin in (*config.allow_origins, *extra_origins)}

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for `origin`, or None when it is not allowed."""
        if not origin:
            return None
        if "*" in self.origins and not self.config.allow_credentials:
            return "*"
        if "*" in self.origins or _normal_origin(origin) in self.origins:
            return origin
        return None

    def preflight(self, origin: str | None, method: str, request_headers: str) -> Headers:
        """Headers of the gateway's answer to a preflight; empty when the origin or method is not allowed."""
        allowed_origin = self.allow_origin(origin)
        methods = self.config.allow_methods
        if allowed_origin is None or ("*" not in methods and method.upper() not in methods):
            return []
        headers: Headers = [("Access-Control-Allow-Origin", allowed_origin)]
        headers.append(("Access-Control-Allow-Methods", method.upper() if "*" in methods else ",".join(methods)))
        allow_headers = self.config.allow_headers
        if "*" in allow_headers and request_headers:
            headers.append(("Access-Control-Allow-Headers", request_headers))
        elif allow_headers and "*" not in allow_headers:
            headers.append(("Access-Control-Allow-Headers", ",".join(allow_headers)))
        if self.config.max_age is not None:
            headers.append(("Access-Control-Max-Age", str(self.config.max_age)))
        if self.config.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        if allowed_origin != "*":
            headers.append(("Vary", "Origin"))
        return headers

    def decorate(self, response: HttpResponse, origin: str | None) -> None:
        """Put the CORS headers on an actual response (API Gateway replaces any the function set)."""
        response.headers = [
            (name, value) for name, value in response.headers if not name.lower().startswith("access-control-")
        ]
        allowed_origin = self.allow_origin(origin)
        if allowed_origin is None:
            return
        response.headers.append(("Access-Control-Allow-Origin", allowed_origin))
        if self.config.allow_credentials:
            response.headers.append(("Access-Control-Allow-Credentials", "true"))
        if self.config.expose_headers:
            response.headers.append(("Access-Control-Expose-Headers", ",".join(self.config.expose_headers)))
        if allowed_origin != "*":
            response.headers.append(("Vary", "Origin"))


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()
