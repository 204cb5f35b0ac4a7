"""What every function's entry point is made of: its HTTP API resolver and the decorators its `lambda_handler` wears."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hub_core.deadline import Handler, deadline_aware
from hub_core.observability import logger_for, metrics_for

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

_H = TypeVar("_H", bound=Handler)


def http_resolver(logger: logging.Logger | Any, *, enable_validation: bool = True) -> APIGatewayHttpResolver:
    """A function's HTTP API resolver: Powertools' request validation and the hub's one error shape."""
    # Imported here: the loyalty relay (SQS only) takes `entry_point` from this module, and its cold start loads
    # no Event Handler (hub_core.http_api is built on it).
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver  # noqa: PLC0415

    from hub_core.http_api import install_error_handlers  # noqa: PLC0415

    app = APIGatewayHttpResolver(enable_validation=enable_validation)
    install_error_handlers(app, logger)
    return app


def entry_point(service: str) -> Callable[[_H], _H]:
    """Decorate a `lambda_handler`: the Lambda context in every log line (state cleared per invocation), the
    metrics flushed at its end, and everything under it within the invocation's deadline."""
    logger, metrics = logger_for(service), metrics_for(service)

    def decorate(handler: _H) -> _H:
        return cast(_H, logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(deadline_aware(handler))))

    return decorate
