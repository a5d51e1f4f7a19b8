"""The shipped suites catch the mistakes plugin authors made, each with a message saying what.

The plugins of `broken_plugins.py` are registered through a throwaway
distribution (as ``pip install`` registers a third-party package), and a fresh
``python -m pytest`` runs troy's suites on them with one subclass each, as in
the author's own repository; so do bare subclasses that override no fixture.
The tests here read that run's JUnit report: the suite must fail, with words
that say what is wrong.  The plugins they are based on pass the same suites
(``test_file_coordination.py``, ``test_file_store.py``, the schedulers').
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

BROKEN = Path(__file__).with_name("broken_plugins.py")

ENTRY_POINTS = """
[troy.schedulers]
crashes_on_inputs = broken_plugins:CrashesOnInputs
ties_by_set_order = broken_plugins:TiesBySetOrder
returns_list = broken_plugins:ReturnsList

[troy.coordination]
like = broken_plugins:LikeCoordination
glob = broken_plugins:GlobCoordination
setlist = broken_plugins:SetListCoordination
getput = broken_plugins:GetThenPutCoordination

[troy.stores]
strget = broken_plugins:StrGetStore
"""

#: The plugin author's test file: one subclass per plugin, and one per suite with no override.
SUITES = """
import pytest

from troy.testing.backends import BackendSuite
from troy.testing.coordination import CoordinationSuite
from troy.testing.launchers import LauncherSuite
from troy.testing.schedulers import SchedulerSuite
from troy.testing.stores import StoreSuite


def scheduler(name):
    class Test(SchedulerSuite):
        @pytest.fixture
        def scheduler_name(self):
            return name

    return Test


TestCrashesOnInputs = scheduler("crashes_on_inputs")
TestTiesBySetOrder = scheduler("ties_by_set_order")
TestReturnsList = scheduler("returns_list")


class TestLikeCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path):
        return f"like://{tmp_path}/coordination"


class TestGlobCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path):
        return f"glob://{tmp_path}/coordination"


class TestSetListCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path):
        return f"setlist://{tmp_path}/coordination"


class TestGetThenPutCoordination(CoordinationSuite):
    @pytest.fixture
    def coordination_url(self, tmp_path):
        return f"getput://{tmp_path}/coordination"


class TestStrGetStore(StoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path):
        return f"strget://{tmp_path}/store"


class TestBareBackendSuite(BackendSuite):
    pass


class TestBareSchedulerSuite(SchedulerSuite):
    pass


class TestBareStoreSuite(StoreSuite):
    pass


class TestBareCoordinationSuite(CoordinationSuite):
    pass


class TestBareLauncherSuite(LauncherSuite):
    pass
"""


@pytest.fixture(scope="module")
def failures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Runs `SUITES` on the broken plugins; for each test that failed, what pytest reported."""
    root = tmp_path_factory.mktemp("author")
    site = root / "site"
    info = site / "troy_broken_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: troy-broken-plugins\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    shutil.copy(BROKEN, site / BROKEN.name)
    (root / "test_author.py").write_text(SUITES)
    report = root / "report.xml"
    env = {**os.environ, "TROY_HOME": str(root / "home")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("TROY_COORDINATION", None)
    options = ["-q", "-p", "no:cacheprovider", "--rootdir", str(root), "--junitxml", str(report)]
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", *options, "test_author.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # about 60 s on a quiet machine; 160 s seen with the cores busy
    )
    assert report.exists(), f"the suites did not run:\n{ran.stdout}\n{ran.stderr}"
    reported = {}
    for case in ElementTree.parse(report).iter("testcase"):
        for outcome in [*case.findall("failure"), *case.findall("error")]:
            test = f"{str(case.get('classname')).rsplit('.', 1)[-1]}::{case.get('name')}"
            reported[test] = f"{outcome.get('message')}\n{outcome.text}"
    return reported


#: (the test that must fail, words its failure must hold)
CAUGHT = {
    "crashes only on units with inputs": (
        "TestCrashesOnInputs::test_a_unit_reading_data_is_placed[no replica known]",
        [
            "scheduler 'crashes_on_inputs' raised IndexError: tuple index out of range in "
            "place() for a unit reading data (no replica known)"
        ],
    ),
    "ties broken by set order": (
        "TestTiesBySetOrder::test_same_placement_in_processes_with_other_hash_seeds",
        [
            "scheduler 'ties_by_set_order' placed differently in processes with other "
            "string-hash seeds",
            "(PYTHONHASHSEED=1) but to",
            "Iterating a set",
        ],
    ),
    "place returns a list": (
        "TestReturnsList::test_place_returns_a_mapping_of_unit_id_to_pilot_id_or_none",
        [
            "scheduler 'returns_list''s place returned list, expected a mapping of unit id "
            "to pilot id or None"
        ],
    ),
    "list_records with SQL LIKE": (
        "TestLikeCoordination::test_list_records_matches_the_prefix_exactly",
        [
            "coordination 'like''s list_records(",
            "/PILOT_1.x-y/z",
            "/pilotA1.x-y/z",
            "which are not directly below it",
            "case-sensitively",
        ],
    ),
    "list_records with glob patterns": (
        "TestGlobCoordination::test_invalid_names_are_refused[list_records]",
        [
            "coordination 'glob''s list_records accepted the names [",
            "'a%', 'a*', 'a?', 'a[b]', 'a/*', '%']",
            "refuse others with CoordinationError",
        ],
    ),
    "list_records returns a set": (
        "TestSetListCoordination::test_list_records_returns_a_sorted_list_of_keys",
        ["coordination 'setlist''s list_records returned set", "expected a sorted list of keys"],
    ),
    "create_record as get, then put": (
        "TestGetThenPutCoordination::test_racing_creators_exactly_one_wins_each_key",
        ["coordination 'getput''s create_record gave True to several racers", "atomically"],
    ),
    "allocate on a create_record that is not atomic": (
        "TestGetThenPutCoordination::test_racing_allocators_get_disjoint_ranges",
        ["coordination 'getput''s allocate handed number", "must be atomic"],
    ),
    "store get returns a str": (
        "TestStrGetStore::test_operations_return_the_contracts_types",
        [
            "store 'strget''s get returned str",
            "expected the sorted list of the names of the files copied",
        ],
    ),
}


@pytest.mark.parametrize("mistake", list(CAUGHT))
def test_the_suite_fails_saying_what_is_wrong(failures: dict[str, str], mistake: str) -> None:
    test, words = CAUGHT[mistake]
    assert test in failures, f"{test} did not fail; what failed: {sorted(failures)}"
    for word in words:
        assert word in failures[test], failures[test]


#: Per suite: the fixture to override, what it returns, and the example's line.
FIXTURES = {
    "BackendSuite": ("backend_rm", "a resource URL", 'return "fork://localhost"'),
    "SchedulerSuite": ("scheduler_name", "the entry-point name", 'return "my_scheduler"'),
    "StoreSuite": ("store_url", "the URL of a location", "def store_url(self, tmp_path):"),
    "CoordinationSuite": ("coordination_url", "the URL of a coordination service", "return"),
    "LauncherSuite": ("launcher_name", "the entry-point name", 'return "my_launcher"'),
}


@pytest.mark.parametrize("suite", list(FIXTURES))
def test_a_missing_fixture_is_named_with_what_to_return_and_an_example(
    failures: dict[str, str], suite: str
) -> None:
    fixture, returns, example = FIXTURES[suite]
    failed = {test: text for test, text in failures.items() if test.startswith(f"TestBare{suite}")}
    assert failed, f"no test of a bare {suite} failed"
    for test, text in failed.items():
        assert f"{suite} needs the '{fixture}' fixture: override it in your {suite}" in text, (
            test,
            text,
        )
        assert f"to return {returns}" in text, text
        assert "@pytest.fixture" in text and f"def {fixture}(" in text and example in text, text
        assert "NotImplementedError" not in text, text
