"""HTTP gateway on 127.0.0.1 that behaves like API Gateway HTTP APIs (httpapi.py translates), plus control routes."""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from hub_local import httpapi
from hub_local.async_invoke import error_payload
from hub_local.event_targets import entries_from_document
from hub_local.httpapi import INTERNAL_ERROR, Headers, HttpResponse, json_response
from hub_local.limits import (
    HTTP_API_INTEGRATION_TIMEOUT,
    HTTP_API_MAX_PAYLOAD_BYTES,
    SERVICE_UNAVAILABLE,
    TOO_LARGE,
    FunctionTimedOut,
)
from hub_local.specs import CorsConfig, HttpRoute
from sandboxes.httpserver import BodyRefused, LoopbackHandler, ServerThread

Invoke = Callable[[str, dict[str, Any]], Any]
PutEvents = Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]
InvokeAsync = Callable[[str, Any], str]

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
BAD_REQUEST: Final = b'{"message":"Bad Request"}'


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
        self.cors: dict[str, httpapi.CorsPolicy] = {
            api: httpapi.CorsPolicy(config, own_origins) for api, config in (cors or {}).items() if config is not None
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
            for route in sorted(self.routes, key=httpapi.specificity)
        ]

    def policy_for(self, path: str, match: httpapi.RouteMatch | None) -> httpapi.CorsPolicy | None:
        """The CORS policy of the API a request belongs to (preflights match a path on any method)."""
        if match is None:
            match = next(
                (found for route in self.routes if (found := httpapi.match_route([route], route.method, path))), None
            )
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
        match = httpapi.match_route(self.routes, method, path)
        if match is None:
            response = json_response(404, NOT_FOUND)
        else:
            event = httpapi.build_event(
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
            return httpapi.to_http_response(outcome.get("result"))
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
        self.answer(response.status, [*response.headers, ("apigw-requestid", httpapi.new_request_id())], response.body)
