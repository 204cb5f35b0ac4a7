"""The global options of `hub`, handed to every command; the stack they name is reached on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from hub_cli.target import Target, connect_aws, connect_local


@dataclass
class Settings:
    """The global options; the stack is reached only by the commands that need it (a local `invoke` does not)."""

    stage: str | None
    region: str | None
    stack_name: str | None
    profile: str | None
    url: str
    template: Path
    _target: Target | None = field(default=None, repr=False)

    @property
    def local(self) -> bool:
        return self.stage is None

    def target(self, *, with_resources: bool = True) -> Target:
        """The stack named by the options; `with_resources=False` on AWS: its stage and region only, no look-up of
        a stack that may not be deployed yet."""
        if self._target is not None and (self._target.resources or not with_resources or self.local):
            return self._target
        if self.stage is None:
            self._target = connect_local(self.url)
        else:
            self._target = connect_aws(
                self.stage,
                region=self.region,
                stack_name=self.stack_name,
                profile=self.profile,
                with_resources=with_resources,
            )
        return self._target


pass_settings = click.make_pass_decorator(Settings)
