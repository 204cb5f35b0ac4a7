"""HTTP gateway on 127.0.0.1 that behaves like API Gateway HTTP APIs: routes, payload 2.0 events, CORS."""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import ClientError

from hub_local.eventbus import entries_from_document, error_payload
from hub_local.limits import (
    HTTP_API_INTEGRATION_TIMEOUT,
    HTTP_API_MAX_PAYLOAD_BYTES,
    SERVICE_UNAVAILABLE,
    TOO_LARGE,
    FunctionTimedOut,
)
from hub_local.template import ACCOUNT_ID, LOCAL_API_ID, CorsConfig, HttpRoute
from sandboxes.httpserver import BodyRefused, LoopbackHandler, ServerThread

Invoke = Callable[[str, dict[str, Any]], Any]
PutEvents = Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]
InvokeAsync = Callable[[str, Any], str]
Headers = list[tuple[str, str]]

ROUTES_PATH: Final = "/_local/routes"
# POST {"Entries": [...]} (or one entry, or EventBridge events): PutEvents on the local stack's buses.
EVENTS_PATH: Final = "/_local/events"
# GET: what a tool (the hub CLI) needs to reach the running stack: moto's URL, stage, physical resource names.
STACK_PATH: Final = "/_local/stack"
# Lambda's Invoke API (POST {LAMBDA_PATH}/2015-03-31/functions/{name}/invocations) for boto3's lambda client with
# endpoint_url={gateway}{LAMBDA_PATH}: synchronous calls, and InvocationType=Event with Lambda's retries.
LAMBDA_PATH: Final = "/_local/lambda"
_INVOKE_PATH: Final = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
NOT_FOUND: Final = b'{"message":"Not Found"}'
INTERNAL_ERROR: Final = b'{"message":"Internal Server Error"}'
BAD_REQUEST: Final = b'{"message":"Bad Request"}'
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


def _specificity(route: HttpRoute) -> tuple[int, int, int, int]:
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
    return min(candidates, key=lambda match: _specificity(match.route), default=None)


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
    if body:
        if is_text_content_type(lowered.get("content-type")):
            event["body"] = body.decode("utf-8", errors="replace")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
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


# ---------------------------------------------------------------------------------------------------- server


class Gateway:
    """Serves the HttpApi routes of every function on 127.0.0.1:`port` (0 picks a free port)."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        invoke: Invoke,
        *,
        cors: Mapping[str, CorsConfig | None] | None = None,
        port: int = 0,
        put_events: PutEvents | None = None,
        describe: Callable[[], dict[str, Any]] | None = None,
        invoke_async: InvokeAsync | None = None,
        functions: Iterable[str] = (),
        host: str = "127.0.0.1",
        integration_timeout: float = HTTP_API_INTEGRATION_TIMEOUT,
        max_payload_bytes: int = HTTP_API_MAX_PAYLOAD_BYTES,
    ) -> None:
        """`describe` serves STACK_PATH; `invoke_async` and `functions` (the names it may invoke) serve LAMBDA_PATH.
        `host` is the address it listens on (its URL names 127.0.0.1 whatever it is). `integration_timeout` and
        `max_payload_bytes` are HTTP API's limits (tests lower them)."""
        self.routes = list(routes)
        self.invoke = invoke
        self.put_events = put_events
        self.describe = describe
        self.invoke_async = invoke_async
        self.functions = frozenset(functions)
        self.integration_timeout = integration_timeout
        self.max_payload_bytes = max_payload_bytes
        self._serving = ServerThread(_Handler, self, name="hub-local-gateway", host=host, port=port)
        self._server = self._serving.httpd
        self.port: int = self._serving.port
        self.url = self._serving.url
        # The gateway's own origin is allowed too, so a page it serves can call it from a browser.
        own_origins = (self.url, f"http://localhost:{self.port}")
        self.cors: dict[str, CorsPolicy] = {
            api: CorsPolicy(config, own_origins) for api, config in (cors or {}).items() if config is not None
        }

    def start(self) -> Gateway:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def route_list(self) -> list[dict[str, str]]:
        """The routes served, for GET /_local/routes and the CLI banner."""
        return [
            {
                "routeKey": route.route_key,
                "method": route.method,
                "path": route.path or "/{proxy+}",
                "function": route.function,
                "api": route.api_id,
                "url": self.url + (route.path or "/"),
            }
            for route in sorted(self.routes, key=_specificity)
        ]

    def policy_for(self, path: str, match: RouteMatch | None) -> CorsPolicy | None:
        """The CORS policy of the API a request belongs to (preflights match a path on any method)."""
        if match is None:
            match = next((found for route in self.routes if (found := match_route([route], route.method, path))), None)
        if match is not None:
            return self.cors.get(match.route.api_id)
        return next(iter(self.cors.values()), None)

    def handle(
        self, method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpResponse:
        """Answer one request: preflight, route listing, or a function invocation."""
        path = urlsplit(target).path
        header_map = {name.lower(): value for name, value in headers}
        origin = header_map.get("origin")
        if method == "OPTIONS" and "access-control-request-method" in header_map:
            policy = self.policy_for(path, None)
            if policy is not None:
                cors_headers = policy.preflight(
                    origin,
                    header_map["access-control-request-method"],
                    header_map.get("access-control-request-headers", ""),
                )
                return HttpResponse(204, cors_headers, b"")
        if method == "GET" and path == ROUTES_PATH:
            return json_response(200, json.dumps(self.route_list(), indent=2).encode())
        if method == "POST" and path == EVENTS_PATH and self.put_events is not None:
            return self._put_events(body)
        if method == "GET" and path == STACK_PATH and self.describe is not None:
            return json_response(200, json.dumps(self.describe(), indent=2).encode())
        if path.startswith(LAMBDA_PATH + "/") and self.functions:
            return self._lambda_invoke(method, path.removeprefix(LAMBDA_PATH), header_map, body)
        match = match_route(self.routes, method, path)
        if match is None:
            response = json_response(404, NOT_FOUND)
        else:
            event = build_event(
                method=method, target=target, headers=headers, body=body, match=match, source_ip=source_ip
            )
            response = self._integrate(match.route.function, event, f"{method} {path}")
        policy = self.policy_for(path, match)
        if policy is not None:
            policy.decorate(response, origin)
        return response

    def _integrate(self, function: str, event: dict[str, Any], request: str) -> HttpResponse:
        """The function's answer, or what HTTP API answers instead: 503 when the function timed out or did not
        answer within the integration timeout (the function may run on, as on AWS), 500 when it failed."""
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["result"] = self.invoke(function, event)
            except BaseException as error:  # reported in the request's thread
                outcome["error"] = error

        worker = threading.Thread(target=call, name=f"gateway-integration-{function}", daemon=True)
        worker.start()
        worker.join(self.integration_timeout)
        if worker.is_alive():
            limit = self.integration_timeout
            print(f"gateway: {function} gave no answer within {limit:g} s on {request}", file=sys.stderr)
            return json_response(503, SERVICE_UNAVAILABLE)
        error = outcome.get("error")
        if isinstance(error, FunctionTimedOut):
            return json_response(503, SERVICE_UNAVAILABLE)
        if error is not None:  # any handler failure is API Gateway's 500
            print(f"gateway: {function} failed on {request}", file=sys.stderr)
            traceback.print_exception(error, file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)
        try:
            return to_http_response(outcome.get("result"))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)

    def _put_events(self, body: bytes) -> HttpResponse:
        """The control route that puts events on a bus (for `curl` and `hub local put-events`)."""
        assert self.put_events is not None
        try:
            entries = entries_from_document(json.loads(body or b"null"))
            answer = self.put_events(entries)
        except ValueError as error:  # bad JSON, bad entries, no bus named when the template has several
            return json_response(400, json.dumps({"message": str(error)}).encode())
        except ClientError as error:  # what moto refused (an unknown bus...)
            details = error.response.get("Error", {})
            document = {"message": details.get("Message", str(error)), "code": details.get("Code", "")}
            return json_response(400, json.dumps(document).encode())
        except Exception:
            print("gateway: putting events failed", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return json_response(500, INTERNAL_ERROR)
        return json_response(200, json.dumps(answer).encode())

    def _lambda_invoke(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Lambda's Invoke API, as boto3 calls it: errors carry x-amzn-ErrorType, a function's own error is a 200
        with X-Amz-Function-Error and the runtime's error document."""
        request = self._lambda_request(method, path, body)
        if isinstance(request, HttpResponse):
            return request
        name, event = request
        request_id = str(uuid.uuid4())
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return HttpResponse(204, [("x-amzn-RequestId", request_id)], b"")
        if invocation_type == "Event" and self.invoke_async is not None:
            request_id = self.invoke_async(name, event)
            return HttpResponse(202, [("x-amzn-RequestId", request_id)], b"")
        if invocation_type != "RequestResponse":
            return _lambda_error(400, "InvalidParameterValueException", f"InvocationType {invocation_type!r}")
        response_headers: Headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("X-Amz-Executed-Version", "$LATEST"),
        ]
        try:
            result = self.invoke(name, event)
        except Exception as error:  # the function's own failure: Lambda answers 200 and says so in a header
            traceback.print_exc(file=sys.stderr)
            response_headers.append(("X-Amz-Function-Error", "Unhandled"))
            return HttpResponse(200, response_headers, json.dumps(error_payload(error, request_id)).encode())
        return HttpResponse(200, response_headers, json.dumps(result).encode())

    def _lambda_request(self, method: str, path: str, body: bytes) -> tuple[str, Any] | HttpResponse:
        """(function name, event) of an Invoke call, or the error Lambda would answer."""
        found = _INVOKE_PATH.match(path)
        if method != "POST" or found is None:
            return _lambda_error(404, "UnknownOperationException", f"{method} {path} is not a Lambda API call here")
        # A name, a function ARN or a partial ARN: the function's name is the part after "function:".
        name = unquote(found.group(1)).rpartition("function:")[2].partition(":")[0]
        if name not in self.functions:
            return _lambda_error(404, "ResourceNotFoundException", f"Function not found: {name}")
        try:
            return name, json.loads(body or b"{}")
        except ValueError:
            return _lambda_error(400, "InvalidRequestContentException", "Could not parse request body into json")


def _lambda_error(status: int, error_type: str, message: str) -> HttpResponse:
    body = json.dumps({"Type": "User", "message": message, "__type": error_type}).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", error_type)], body)


class _Handler(LoopbackHandler):
    server_version = "hub-local"
    log_prefix = "gateway"
    do_HEAD = LoopbackHandler._serve

    def serve(self) -> None:
        gateway: Gateway = self.server.owner
        try:
            body = self.read_body(gateway.max_payload_bytes)
        except BodyRefused as refused:
            # The rest of the body is never read: the connection cannot carry another request after this answer.
            self.close_connection = True
            response = json_response(413, TOO_LARGE) if refused.status == 413 else json_response(400, BAD_REQUEST)
            response.headers.append(("Connection", "close"))
        else:
            response = gateway.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        self.answer(response.status, [*response.headers, ("apigw-requestid", new_request_id())], response.body)
