"""What every suite says when a fixture the plugin author must provide is missing."""

from __future__ import annotations

from typing import NoReturn

import pytest


def fixture_needed(
    suite: str, fixture: str, returns: str, example: str, arguments: str = "self"
) -> NoReturn:
    """Fail the test, naming the fixture to override, what it returns, and an example.

    ``suite`` is the suite class to subclass (``"StoreSuite"``), ``example`` the
    expression the example fixture returns, ``arguments`` its parameters.
    """
    pytest.fail(
        f"{suite} needs the {fixture!r} fixture: override it in your {suite} subclass "
        f"to return {returns}, for example:\n\n"
        f"    class TestMine({suite}):\n"
        f"        @pytest.fixture\n"
        f"        def {fixture}({arguments}):\n"
        f"            return {example}\n",
        pytrace=False,
    )
