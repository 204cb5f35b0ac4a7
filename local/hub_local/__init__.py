"""Docker-free local runner: serves whatever template.yaml declares on 127.0.0.1 (moto, gateway, queue pump)."""

from hub_local.partners import PartnerSpec, default_partners
from hub_local.stack import LocalStack
from hub_local.template import LocalTemplate, TemplateError, load_template

__all__ = ["LocalStack", "LocalTemplate", "PartnerSpec", "TemplateError", "default_partners", "load_template"]
