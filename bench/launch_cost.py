"""CPU per unit launch: troy's launcher (subprocess.Popen) against os.posix_spawn.

    python bench/launch_cost.py                  # 5 rounds of 2,000 launches each way
    python bench/launch_cost.py -n 500 --rounds 3

Groundwork for issue 19's multi-process launcher: what one launch costs the
launching Python process (its own user + system CPU, from getrusage, so the load
of the machine distorts it less than wall-clock time), when each launch keeps
what a unit has -- its sandbox directory, stdout/stderr files in it, its own
session, the agent's environment -- and is waited for.

    popen  troy.agent.launcher.start(): mkdir, two os.open, subprocess.Popen
           (cwd, start_new_session, close_fds), then wait()
    spawn  mkdir, chdir into the sandbox (a launcher process of its own may),
           os.posix_spawn with file actions that open stdin/stdout/stderr in the
           child and setsid=True, then waitpid

Before measuring, both ways run one unit that prints its directory and an
environment variable, writes to stderr and exits 3; their files and exit codes
must match.  Prints medians and ranges, then one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from troy.agent.launcher import Prepared, start

_OUTPUT = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def popen_launch(prepared: Prepared) -> int:
    """troy's launch as the agent does it today; the exit code."""
    return start(prepared).wait()


def spawn_launch(prepared: Prepared) -> int:
    """The same unit through os.posix_spawn; the exit code (negative: signal)."""
    os.makedirs(prepared.sandbox, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, prepared.stdin or os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, prepared.stdout, _OUTPUT, 0o644),
    ]
    if prepared.stderr == prepared.stdout:
        actions.append((os.POSIX_SPAWN_DUP2, 1, 2))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 2, prepared.stderr, _OUTPUT, 0o644))
    os.chdir(prepared.sandbox)  # posix_spawn has no cwd: a launcher process may chdir
    environment = os.environ if prepared.environment is None else prepared.environment
    pid = os.posix_spawnp(
        prepared.argv[0], prepared.argv, environment, file_actions=actions, setsid=True
    )
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def unit(root: str, name: str, argv: list[str], environment: dict[str, str] | None) -> Prepared:
    sandbox = os.path.join(root, name)
    return Prepared(
        argv=argv,
        sandbox=sandbox,
        environment=environment,
        stdin=None,
        stdout=os.path.join(sandbox, "stdout"),
        stderr=os.path.join(sandbox, "stderr"),
    )


def check_same(root: str) -> None:
    """Both ways give a unit the same directory, environment, files and exit code."""
    script = 'pwd; echo "$TROY_PROBE"; echo to-stderr >&2; exit 3'
    seen = []
    for name, launch in (("popen", popen_launch), ("spawn", spawn_launch)):
        environment = {**os.environ, "TROY_PROBE": "probe"}
        prepared = unit(root, f"check-{name}", ["sh", "-c", script], environment)
        code = launch(prepared)
        with open(prepared.stdout) as out, open(prepared.stderr) as err:
            seen.append((code, out.read().replace(name, "WAY"), err.read()))
    if seen[0] != seen[1]:
        raise SystemExit(f"the two launches differ: {seen}")


def cost(launch: Callable[[Prepared], int], root: str, n: int) -> tuple[float, float, float]:
    """(own CPU µs per launch, children's CPU µs per launch, launches per second)."""
    before, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    started = time.perf_counter()
    for i in range(n):
        if launch(unit(root, f"u{i}", ["/bin/true"], None)) != 0:
            raise SystemExit("/bin/true failed")
    elapsed = time.perf_counter() - started
    after, children_after = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    own = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    kids = children_after.ru_utime + children_after.ru_stime - children.ru_utime - children.ru_stime
    return own / n * 1e6, kids / n * 1e6, n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=2000, help="launches per way and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the two ways alternating")
    args = parser.parse_args()
    home = os.getcwd()
    work = tempfile.mkdtemp(prefix="troy-launch-")
    figures: dict[str, dict[str, list[float]]] = {
        way: {"own_us": [], "children_us": [], "per_s": []} for way in ("popen", "spawn")
    }
    try:
        check_same(work)
        for round_ in range(args.rounds):
            for way, launch in (("popen", popen_launch), ("spawn", spawn_launch)):
                root = os.path.join(work, f"{way}-{round_}")
                own, kids, rate = cost(launch, root, args.n)
                os.chdir(home)
                shutil.rmtree(root)
                figures[way]["own_us"].append(own)
                figures[way]["children_us"].append(kids)
                figures[way]["per_s"].append(rate)
    finally:
        os.chdir(home)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.rounds} rounds of {args.n} launches of /bin/true each way, one thread")
    result: dict[str, dict[str, dict[str, float]]] = {}
    for way, values in figures.items():
        result[way] = {}
        for key, series in values.items():
            s = {"median": statistics.median(series), "min": min(series), "max": max(series)}
            result[way][key] = s
            print(
                f"  {way:<6} {key:<12} {s['median']:9.1f}   (range {s['min']:.1f} - {s['max']:.1f})"
            )
    print("RESULT " + json.dumps(result | {"n": args.n, "rounds": args.rounds}))


if __name__ == "__main__":
    main()
