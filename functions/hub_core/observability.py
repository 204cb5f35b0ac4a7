"""One Powertools Logger and Metrics per function, shared by its handler and flow modules."""

from __future__ import annotations

import functools

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

METRICS_NAMESPACE = "PartnerHub"


@functools.cache
def logger_for(service: str) -> Logger:
    """The function's structured logger; the adapters' standard-library loggers get its format and keys."""
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={"partners"})
    return logger


@functools.cache
def metrics_for(service: str) -> Metrics:
    """EMF metrics in the hub's namespace, with the function as the `service` dimension."""
    return Metrics(namespace=METRICS_NAMESPACE, service=service)
