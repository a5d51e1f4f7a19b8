"""The launcher conformance suite: what every ``troy.launchers`` plugin must do.

Run it against a launcher with one subclass that names it::

    import pytest
    from troy.testing.launchers import LauncherSuite

    class TestMyLauncher(LauncherSuite):
        @pytest.fixture
        def launcher_name(self):
            return "my_launcher"

The launcher is loaded through the registry by its entry-point name, as the
agent loads the pilot's ``launcher``.  Everything is pure (argv in, argv out)
except the availability tests, which look the launcher's ``program`` up in
directories of ``tmp_path``.  Each test runs over every unit of `UNITS` in
every allocation of the ``allocations`` fixture; override that fixture if
your launcher only makes sense in some (say, only ``AllocationFacts("pbs", ...)``).

A launcher that declares ``"mpi"`` is also held to the MPI tests (skipped
without it): every MPI unit is wrapped, in every allocation, and its rank
count appears among the launcher's options.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from troy.model.cores import runs_mpi
from troy.plugins import registry
from troy.plugins.launchers.base import AllocationFacts, Launcher, LauncherMissing
from troy.testing.overrides import fixture_needed

#: A unit's argv with words a careless launcher would split, join, expand or take as its own.
ARGV = ("./solver", "--ntasks=5", "-n", "2", "", "two words", "$HOME", "--", "*")

#: (unit description as the agent claims it, the cores the agent gave it).
UNITS: tuple[tuple[Mapping[str, Any], int], ...] = (
    ({"executable": "./solver"}, 1),
    ({"executable": "./solver", "number_of_processes": 3}, 3),
    ({"executable": "./solver", "cores": {"min": 2, "max": 8}}, 5),
    ({"executable": "./solver", "spmd_variation": "single", "threads_per_process": 2}, 1),
    ({"executable": "./solver", "spmd_variation": "mpi"}, 1),
    ({"executable": "./solver", "spmd_variation": "MPI", "number_of_processes": 37}, 37),
    (
        {
            "executable": "./solver",
            "spmd_variation": "openmpi",
            "number_of_processes": 8,
            "processes_per_host": 4,
            "threads_per_process": 2,
        },
        16,
    ),
)

#: The MPI units of `UNITS` with more than one rank: their count must reach the launcher.
RANKED = tuple(
    (unit, cores)
    for unit, cores in UNITS
    if runs_mpi(unit) and int(unit.get("number_of_processes") or 1) > 1
)


def launched(
    launcher: Launcher,
    argv: Sequence[str],
    unit: Mapping[str, Any],
    cores: int,
    allocation: AllocationFacts,
) -> list[str]:
    """The argv the agent would start: wrapped if the launcher applies, else as it is."""
    if launcher.applies(unit, allocation):
        return launcher.wrap(argv, unit, cores, allocation)
    return list(argv)


class LauncherFixtures:
    """Fixtures of the launcher suite; a subclass must override ``launcher_name``."""

    @pytest.fixture
    def launcher_name(self) -> str:
        """The entry-point name of the launcher under test; override this."""
        fixture_needed(
            "LauncherSuite",
            "launcher_name",
            "the entry-point name of your launcher in group 'troy.launchers' "
            "(the package must be installed)",
            '"my_launcher"',
        )

    @pytest.fixture
    def launcher_class(self, launcher_name: str) -> type[Launcher]:
        """The launcher class, loaded by name through the registry."""
        plugin: type[Launcher] = registry.load("launcher", launcher_name)
        return plugin

    @pytest.fixture
    def launcher(self, launcher_class: type[Launcher]) -> Launcher:
        """A fresh instance, made as the agent makes it: with no arguments."""
        return launcher_class()

    @pytest.fixture
    def allocations(self) -> Sequence[AllocationFacts]:
        """The allocations every test tries; override to narrow them to where yours runs."""
        return (
            AllocationFacts("none", (("me", 4),)),
            AllocationFacts("slurm", (("n1", 8),)),
            AllocationFacts("slurm", (("n1", 8), ("n2", 8))),
            AllocationFacts("pbs", (("a", 4), ("b", 4)), "/var/spool/pbs/aux/3"),
            AllocationFacts("sge", (("a", 4), ("b", 4)), "/tmp/pe_hostfile"),
            AllocationFacts("lsf", (("a", 4),)),
        )


class LauncherDeclarationTests(LauncherFixtures):
    """The class attributes say what the agent and the registry rely on."""

    def test_declarations_have_the_contracts_types(self, launcher_class: type[Launcher]) -> None:
        assert isinstance(launcher_class.capabilities, frozenset)
        assert all(isinstance(word, str) for word in launcher_class.capabilities)
        program = launcher_class.program
        if program is None:
            return
        assert isinstance(program, str) and program.strip() == program and program, (
            f"program must be a command name looked up on PATH, got {program!r}"
        )
        assert os.sep not in program, f"program {program!r} is looked up on PATH: no directories"
        assert launcher_class.purpose.strip(), (
            "set 'purpose': the LauncherMissing message says why units need the program"
        )


class LauncherWrapTests(LauncherFixtures):
    """``wrap`` puts the launcher in front of the unit's argv, and nothing else."""

    def test_the_units_argv_comes_last_and_unchanged(
        self, launcher: Launcher, allocations: Sequence[AllocationFacts]
    ) -> None:
        for allocation in allocations:
            for unit, cores in UNITS:
                result = launched(launcher, list(ARGV), unit, cores, allocation)
                assert isinstance(result, list) and all(isinstance(w, str) for w in result), (
                    f"launcher {type(launcher).name!r}'s wrap returned {type(result).__name__} "
                    f"{result!r:.80}, expected a new list of str: the command to start"
                )
                assert tuple(result[len(result) - len(ARGV) :]) == ARGV, (
                    f"{unit} in {allocation}: the unit's argv must end the command, "
                    f"unchanged; got {result}"
                )

    def test_wrapped_commands_start_with_the_program(
        self, launcher: Launcher, allocations: Sequence[AllocationFacts]
    ) -> None:
        program = type(launcher).program
        for allocation in allocations:
            for unit, cores in UNITS:
                if not launcher.applies(unit, allocation):
                    continue
                assert program is not None, (
                    f"{unit} in {allocation} is wrapped, but the launcher names no 'program' "
                    "that the agent could look up"
                )
                result = launcher.wrap(list(ARGV), unit, cores, allocation)
                assert result[0] == program and len(result) > len(ARGV), result

    def test_inputs_are_left_alone(
        self, launcher: Launcher, allocations: Sequence[AllocationFacts]
    ) -> None:
        for allocation in allocations:
            for unit, cores in UNITS:
                argv, values = list(ARGV), copy.deepcopy(dict(unit))
                result = launched(launcher, argv, values, cores, allocation)
                assert result is not argv, "return a new list"
                result.append("changed")
                assert argv == list(ARGV), "the argv given was modified"
                assert values == unit, "the unit's values were modified"

    def test_same_inputs_give_the_same_command(
        self, launcher_class: type[Launcher], allocations: Sequence[AllocationFacts]
    ) -> None:
        first, second = launcher_class(), launcher_class()
        for allocation in allocations:
            for unit, cores in UNITS:
                once = launched(first, ARGV, unit, cores, allocation)
                assert launched(first, ARGV, unit, cores, allocation) == once
                assert launched(second, ARGV, unit, cores, allocation) == once


class LauncherMpiTests(LauncherFixtures):
    """MPI units are started as ranks (only for launchers declaring ``"mpi"``)."""

    @pytest.fixture
    def mpi_launcher(self, launcher: Launcher) -> Launcher:
        """The launcher under test; skips the test unless it declares ``"mpi"``."""
        if "mpi" not in type(launcher).capabilities:
            pytest.skip(f"{type(launcher).__name__} does not declare capability 'mpi'")
        return launcher

    def test_every_mpi_unit_is_wrapped(
        self, mpi_launcher: Launcher, allocations: Sequence[AllocationFacts]
    ) -> None:
        for allocation in allocations:
            for spelling in ("mpi", "MPI", "openmpi", " OpenMPI "):
                unit = {"executable": "./solver", "spmd_variation": spelling}
                assert mpi_launcher.applies(unit, allocation), f"{unit} in {allocation}"

    def test_the_rank_count_is_among_the_options(
        self, mpi_launcher: Launcher, allocations: Sequence[AllocationFacts]
    ) -> None:
        assert RANKED, "the suite lost its MPI units with several ranks"
        for allocation in allocations:
            for unit, cores in RANKED:
                result = mpi_launcher.wrap(list(ARGV), unit, cores, allocation)
                options = result[: len(result) - len(ARGV)]
                ranks = str(unit["number_of_processes"])
                assert any(ranks in word for word in options), (
                    f"{unit} in {allocation}: {ranks} ranks, but the options {options} "
                    "do not say so"
                )


class LauncherAvailabilityTests(LauncherFixtures):
    """``available`` and ``require`` look the program up on the PATH they are given."""

    def test_a_missing_program_is_launcher_missing_naming_it(
        self, launcher: Launcher, tmp_path: Path
    ) -> None:
        empty = tmp_path / "empty"
        empty.mkdir()
        program = type(launcher).program
        if program is None:
            assert launcher.available(str(empty)), "a launcher without a program is available"
            launcher.require(str(empty))
            return
        (empty / program).write_text("#!/bin/sh\n")  # not executable: does not count
        assert not launcher.available(str(empty))
        with pytest.raises(LauncherMissing) as error:
            launcher.require(str(empty))
        assert isinstance(error.value, OSError)
        assert error.value.filename == program
        assert str(error.value.strerror).startswith("not found on PATH; ")
        assert type(launcher).purpose in str(error.value.strerror)

    def test_a_program_on_the_path_is_available(self, launcher: Launcher, tmp_path: Path) -> None:
        found, empty = tmp_path / "bin", tmp_path / "empty"
        found.mkdir()
        empty.mkdir()
        program = type(launcher).program
        if program is not None:
            (found / program).write_text("#!/bin/sh\n")
            (found / program).chmod(0o755)
        path = os.pathsep.join([str(empty), str(found)])
        assert launcher.available(path)
        launcher.require(path)


class LauncherSuite(
    LauncherDeclarationTests,
    LauncherWrapTests,
    LauncherMpiTests,
    LauncherAvailabilityTests,
):
    """Every launcher conformance test; subclass it and override ``launcher_name``."""
