"""The `nice` backend: like `local`, but the agent (and so every unit) runs niced."""

import dataclasses
from typing import Any, ClassVar

from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.local import LocalBackend


class NiceBackend(LocalBackend):
    """Forks the agent on this host under ``nice -n 10``; chosen only by ``pj_type="nice"``."""

    name: ClassVar[str] = "nice"
    schemes: ClassVar[tuple[str, ...]] = ()  # chosen only by pj_type="nice"

    def launch(self, launch: PilotLaunch) -> dict[str, Any]:
        # nice execs the agent: the pid (and its start time) in the handle stay the agent's.
        niced = ["nice", "-n", "10", *launch.agent_command]
        return super().launch(dataclasses.replace(launch, agent_command=niced))
