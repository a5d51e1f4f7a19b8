"""Coordination storage per unit: a finished service before and after compaction.

    python bench/storage.py                          # 100,000 x /bin/true, file coordination
    python bench/storage.py -n 10000 --redis redis://localhost:6379/0

Runs N null units (/bin/true) to Done on one local pilot, closes the services
(the pilot is canceled, its agent acknowledges and exits), then measures what
the coordination holds, calls `troy.core.compaction.compact_unit_service` and
measures again.  File coordination: the bytes of every file below the
directory (apparent size, and the blocks the filesystem allocated) and the
number of files.  Redis (``--redis``, a server this run may write under a
fresh prefix): the sum of ``MEMORY USAGE`` over the prefix's keys.  Prints a
table, then one line of JSON (prefixed ``RESULT``).  Timings are not the point
here and are not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import uuid
from typing import Any

import troy
from troy import State
from troy.core.compaction import compact_unit_service
from troy.plugins.registry import open_coordination


def run(url: str, n: int, slots: int, directory: str) -> str:
    """N x /bin/true to Done on one local pilot; the work-unit service's id."""
    pilots = troy.PilotJobService(coordination=url)
    units = troy.WorkUnitService(coordination=url)
    try:
        units.add(pilots)
        pilots.create(
            "fork://localhost", {"number_of_processes": slots, "working_directory": directory}
        )
        submitted = units.submit([{"executable": "/bin/true"}] * n)
        units.wait()
        bad = [u for u in submitted if u.state != State.Done]
        if bad:
            raise SystemExit(f"{len(bad)} units not Done, e.g. {bad[0].id}: {bad[0].state_detail}")
        return units.id
    finally:
        pilots.cancel()
        pilots.close()
        units.close()


def file_usage(root: str) -> dict[str, int]:
    """Apparent bytes, allocated bytes, files and folders below ``root``."""
    usage = {"bytes": 0, "allocated": 0, "files": 0, "folders": 0}
    for folder, folders, files in os.walk(root):
        usage["folders"] += len(folders)
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            usage["bytes"] += info.st_size
            usage["allocated"] += info.st_blocks * 512
            usage["files"] += 1
    return usage


def redis_usage(url: str, prefix: str) -> dict[str, int]:
    """Keys under ``prefix`` and the sum of their MEMORY USAGE."""
    import redis

    client = redis.Redis.from_url(url.split("?", 1)[0])
    usage = {"bytes": 0, "keys": 0}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        usage["bytes"] += int(client.memory_usage(key, samples=0) or 0)
        usage["keys"] += 1
    client.close()
    return usage


def measure(label: str, url: str, n: int, slots: int, work: str) -> dict[str, Any]:
    """Run, measure, compact, measure; print and return the figures."""
    if url.startswith("file:"):
        root = url[len("file://") :]

        def usage() -> dict[str, int]:
            return file_usage(root)
    else:
        prefix = f"storage-{uuid.uuid4().hex[:8]}"
        url = f"{url}{'&' if '?' in url else '?'}prefix={prefix}"

        def usage() -> dict[str, int]:
            return redis_usage(url, prefix)

    service_id = run(url, n, slots, os.path.join(work, f"pilot-{label}"))
    before = usage()
    coordination = open_coordination(url)
    try:
        if not compact_unit_service(coordination, service_id):
            raise SystemExit(f"{label}: service {service_id} was not compacted")
    finally:
        coordination.close()
    after = usage()
    print(f"{label}: {n} x /bin/true on {slots} slots, service {service_id}")
    for name, figures in (("before compaction", before), ("after compaction", after)):
        counts = ", ".join(f"{v} {k}" for k, v in figures.items() if k not in ("bytes",))
        print(f"  {name:<18} {figures['bytes'] / n:10.1f} bytes/unit  ({counts})")
    return {
        "n": n,
        "before": before,
        "after": after,
        "bytes_per_unit_before": before["bytes"] / n,
        "bytes_per_unit_after": after["bytes"] / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=100_000, help="units (default 100000)")
    parser.add_argument("-s", "--slots", type=int, default=2, help="pilot slots (default 2)")
    parser.add_argument("--redis", help="also measure on this Redis server (redis://host:port/db)")
    parser.add_argument("--no-file", action="store_true", help="skip file coordination")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="troy-storage-")
    print(f"troy {troy.__version__} on {platform.node()}: {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, work directory {work}")  # fmt: skip
    results: dict[str, Any] = {}
    if not args.no_file:
        url = "file://" + os.path.join(work, "coordination")
        results["file"] = measure("file", url, args.n, args.slots, work)
    if args.redis:
        results["redis"] = measure("redis", args.redis, args.n, args.slots, work)
    print("RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
