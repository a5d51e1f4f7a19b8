"""The `nice` backend: like `local`, but the agent (and so every unit) runs niced."""

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.local import LocalBackend
from troy.plugins.options import Option, number, url_options


class NiceBackend(LocalBackend):
    """Forks the agent on this host under ``nice -n N``; chosen only by ``pj_type="nice"``."""

    name: ClassVar[str] = "nice"
    schemes: ClassVar[tuple[str, ...]] = ()  # chosen only by pj_type="nice"
    # A backend's options come from the resource URL's query: fork://localhost?niceness=15.
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "niceness": Option(
                10, "how nice the agent and its units run", number(0, 19, whole=True, text=True)
            )
        }
    )

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        # troy checked the URL's options before it made this backend: here they are used.
        niceness = self.check_options(url_options(self.rm))["niceness"]
        # nice execs the agent: the pid (and its start time) in the handle stay the agent's.
        niced = ["nice", "-n", str(niceness), *launch.agent_command]
        return super().launch(dataclasses.replace(launch, agent_command=niced))
