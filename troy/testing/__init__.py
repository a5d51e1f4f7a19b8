"""troy's conformance suites, shipped for plugin authors (ours and third parties').

Each module holds, for one plugin kind, a fixtures base class whose few
must-override fixtures say how to reach the plugin under test, and mixins
holding only tests (`coordination` is a package: its fixtures in ``base``, a
module of mixins per group of operations).  A plugin runs the whole suite with a one-line subclass::

    from troy.testing.coordination import CoordinationSuite

    class TestMyCoordination(CoordinationSuite):
        @pytest.fixture
        def coordination_url(self, tmp_path): return f"mine://{tmp_path}"
"""

import pytest

# Plain asserts in the suites report their operands, as they would in a test file.
pytest.register_assert_rewrite(
    "troy.testing.backends",
    "troy.testing.coordination",
    "troy.testing.launchers",
    "troy.testing.schedulers",
    "troy.testing.stores",
)
