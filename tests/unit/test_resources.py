"""Batch allocations read from the environment, and the agent's slots inside one."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from troy.agent.resources import (
    Allocation,
    discover,
    expand_cpus_per_node,
    expand_nodelist,
    pilot_slots,
)

LOCAL_CORES = len(os.sched_getaffinity(0))


# -- SLURM's compressed forms ------------------------------------------------------------
@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("gpu1", ["gpu1"]),
        ("n[01-03,07],x", ["n01", "n02", "n03", "n07", "x"]),
        ("node[8-10]", ["node8", "node9", "node10"]),
        ("node[098-101]", ["node098", "node099", "node100", "node101"]),
        ("a[1-2],b[07,9-10],c", ["a1", "a2", "b07", "b9", "b10", "c"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("cn[5]-ib", ["cn5-ib"]),
        ("host.example.org", ["host.example.org"]),
    ],
)
def test_nodelist_expands_like_slurm(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize(
    "nodelist", ["", "n[01-03", "n01-03]", "n[a-b]", "n[3-1]", "a,,b", "n[[1]]", "n[1-]"]
)
def test_malformed_nodelist_is_an_error(nodelist: str) -> None:
    with pytest.raises(ValueError):
        expand_nodelist(nodelist)


@pytest.mark.parametrize(
    ("text", "counts"),
    [("2(x3),1", [2, 2, 2, 1]), ("16", [16]), ("4,8(x2)", [4, 8, 8]), (" 36(x1) ", [36])],
)
def test_cpus_per_node_expands(text: str, counts: list[int]) -> None:
    assert expand_cpus_per_node(text) == counts


@pytest.mark.parametrize("text", ["", "2(x)", "x", "0", "2(x0)", "2x3", "-1"])
def test_malformed_cpus_per_node_is_an_error(text: str) -> None:
    with pytest.raises(ValueError):
        expand_cpus_per_node(text)


# -- discover() --------------------------------------------------------------------------
def test_outside_any_allocation_the_local_machine() -> None:
    allocation = discover({"HOME": "/root", "JOB_ID": "7"})  # a bare JOB_ID is no SGE job
    assert allocation == Allocation("none", ((socket.gethostname(), LOCAL_CORES),))
    assert allocation.cores == LOCAL_CORES


def test_slurm() -> None:
    allocation = discover(
        {
            "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "n[01-03,07],gpu1",
            "SLURM_JOB_CPUS_PER_NODE": "2(x3),1,8",
        }
    )
    assert allocation == Allocation(
        "slurm", (("n01", 2), ("n02", 2), ("n03", 2), ("n07", 1), ("gpu1", 8)), "4242"
    )
    assert allocation.cores == 15


def test_slurm_without_cpus_per_node_takes_cpus_on_node_for_each() -> None:
    allocation = discover(
        {"SLURM_JOBID": "9", "SLURM_NODELIST": "c[1-2]", "SLURM_CPUS_ON_NODE": "4"}
    )
    assert allocation == Allocation("slurm", (("c1", 4), ("c2", 4)), "9")


def test_pbs_counts_slots_per_host(tmp_path: Path) -> None:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("a.cluster\na.cluster\nb.cluster\na.cluster\n\nc.cluster\n")
    allocation = discover({"PBS_NODEFILE": str(nodefile), "PBS_JOBID": "17.server"})
    assert allocation == Allocation(
        "pbs", (("a.cluster", 3), ("b.cluster", 1), ("c.cluster", 1)), "17.server", str(nodefile)
    )


def test_sge_reads_the_pe_hostfile(tmp_path: Path) -> None:
    hostfile = tmp_path / "pe_hostfile"
    hostfile.write_text(
        "node1 4 all.q@node1 UNDEFINED\nnode2 2 all.q@node2 UNDEFINED\nnode1 1 long.q@node1 0,1\n"
    )
    allocation = discover({"PE_HOSTFILE": str(hostfile), "JOB_ID": "88"})
    assert allocation == Allocation("sge", (("node1", 5), ("node2", 2)), "88", str(hostfile))


def test_lsf() -> None:
    allocation = discover(
        {"LSB_MCPU_HOSTS": "hostA 4 hostB 2", "LSB_JOBID": "123", "LSB_DJOB_HOSTFILE": "/h"}
    )
    assert allocation == Allocation("lsf", (("hostA", 4), ("hostB", 2)), "123", "/h")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_CPUS_PER_NODE": "2"}, "SLURM_JOB_NODELIST"),
        (
            {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-", "SLURM_JOB_CPUS_PER_NODE": "2"},
            "SLURM_JOB_NODELIST",
        ),
        (
            {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_JOB_CPUS_PER_NODE": "two"},
            "SLURM_JOB_CPUS_PER_NODE",
        ),
        (
            {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[1-3]", "SLURM_JOB_CPUS_PER_NODE": "2"},
            "SLURM_JOB_CPUS_PER_NODE",
        ),
        ({"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1"}, "SLURM_CPUS_ON_NODE"),
        (
            {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n1", "SLURM_CPUS_ON_NODE": "0"},
            "SLURM_CPUS_ON_NODE",
        ),
        ({"PBS_JOBID": "1.server"}, "PBS_NODEFILE"),
        ({"PBS_NODEFILE": "/no/such/nodefile"}, "PBS_NODEFILE"),
        ({"PE_HOSTFILE": "/no/such/pe_hostfile"}, "PE_HOSTFILE"),
        ({"LSB_JOBID": "5"}, "LSB_MCPU_HOSTS"),
        ({"LSB_MCPU_HOSTS": "hostA 4 hostB"}, "LSB_MCPU_HOSTS"),
        ({"LSB_MCPU_HOSTS": "hostA four"}, "LSB_MCPU_HOSTS"),
        ({"LSB_MCPU_HOSTS": "hostA \u00b2"}, "LSB_MCPU_HOSTS"),  # "²".isdigit() is true
        (
            {"SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "n[\u00b2]", "SLURM_CPUS_ON_NODE": "1"},
            "SLURM_JOB_NODELIST",
        ),
    ],
)
def test_bad_values_fall_back_to_none_with_a_warning_naming_the_variable(
    environ: dict[str, str], variable: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="troy.agent.resources"):
        allocation = discover(environ)
    assert allocation.kind == "none"
    assert allocation.cores == LOCAL_CORES
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert variable in warnings[0]


@pytest.mark.parametrize(
    ("content", "why"),
    [("", "lists no hosts"), ("node1\n", "expected 'host slots ...'"), ("node1 x q\n", "'x'")],
)
def test_bad_pe_hostfile_falls_back(
    tmp_path: Path, content: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    hostfile = tmp_path / "pe_hostfile"
    hostfile.write_text(content)
    with caplog.at_level(logging.WARNING, logger="troy.agent.resources"):
        assert discover({"PE_HOSTFILE": str(hostfile)}).kind == "none"
    assert "PE_HOSTFILE" in caplog.text
    assert why in caplog.text


# -- the agent's slots -------------------------------------------------------------------
SINGLE = Allocation("pbs", (("a", 8),), "1")
SLURM3 = Allocation("slurm", (("n1", 4), ("n2", 4), ("n3", 2)), "2")
PBS3 = Allocation("pbs", (("a.cluster", 4), ("b.cluster", 6), ("c.cluster", 2)), "3", "/f")


@pytest.mark.parametrize(
    ("allocation", "requested", "host", "slots"),
    [
        # outside an allocation: as ever
        (Allocation("none", (("me", 3),)), None, "me", 3),
        (Allocation("none", (("me", 3),)), 16, "me", 16),
        # one node: all its cores
        (SINGLE, None, "elsewhere", 8),
        (SINGLE, 2, "a", 2),
        # SLURM: every node's cores (srun reaches the others)
        (SLURM3, None, "n1", 10),
        (SLURM3, 6, "n1", 6),
        # PBS, SGE, LSF: the agent's own node, found by full or short name
        (PBS3, None, "b.cluster", 6),
        (PBS3, None, "b", 6),
        (PBS3, None, "c.cluster.example.org", 2),
        (PBS3, 3, "b.cluster", 3),
        (PBS3, None, "unknown", 4),  # not listed: the first node, where the job started
    ],
)
def test_pilot_slots(allocation: Allocation, requested: int | None, host: str, slots: int) -> None:
    assert pilot_slots(allocation, requested, host) == slots


def test_asking_for_more_than_the_allocation_has_is_cut_down_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="troy.agent.resources"):
        assert pilot_slots(SLURM3, 64, "n1") == 10
        assert pilot_slots(PBS3, 7, "b.cluster") == 6
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "number_of_processes is 64" in warnings[0]
    assert "10" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="troy.agent.resources"):
        pilot_slots(SLURM3, 10, "n1")
        pilot_slots(SLURM3, 3, "n1")
    assert not caplog.records


def test_the_agent_sizes_its_slots_from_the_allocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from troy.agent.agent import Agent
    from troy.model import protocol
    from troy.plugins.registry import open_coordination

    # The agent sets these in its own environment: let monkeypatch restore them.
    for name in ("TROY_PILOT_ID", "TROY_PILOT_DIRECTORY", "PWD", "OLDPWD"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    monkeypatch.setenv("SLURM_JOB_CPUS_PER_NODE", "3(x2)")
    coordination = open_coordination((tmp_path / "coordination").as_uri(), serve=True)
    try:
        for pilot, requested, slots in (("pilot-a", None, 6), ("pilot-b", 4, 4), ("pilot-c", 9, 6)):
            description = {} if requested is None else {"number_of_processes": requested}
            coordination.put_record(
                protocol.pilot_key(pilot),
                {"description": description, "working_directory": str(tmp_path / pilot)},
            )
            agent = Agent(coordination, pilot)
            assert agent.allocation == Allocation("slurm", (("n1", 3), ("n2", 3)), "77")
            assert agent.slots == slots
    finally:
        coordination.close()


@pytest.mark.parametrize(
    ("minutes", "in_batch_job", "seconds"),
    [(10, False, 600.0), (10, True, 540.0), (120, True, 7140.0), (0.5, True, 27.0)],
)
def test_agent_stops_early_inside_a_batch_job(
    minutes: float, in_batch_job: bool, seconds: float
) -> None:
    from troy.agent.agent import wall_time_seconds

    assert wall_time_seconds(minutes, in_batch_job) == pytest.approx(seconds)


def test_an_htcondor_slot_is_an_allocation(tmp_path: Path) -> None:
    ad = tmp_path / ".job.ad"
    ad.write_text('ClusterId = 42\nRequestCpus = 3\nCmd = "/bin/sh"\n')
    allocation = discover({"_CONDOR_JOB_AD": str(ad)})
    assert (allocation.kind, allocation.cores, allocation.job_id) == ("condor", 3, "42")
    missing = discover({"_CONDOR_JOB_AD": str(tmp_path / "gone")})
    assert missing.kind == "none"  # unreadable: a warning, then as outside one
