"""The SAGA job-description attributes the TROY API names, with their validators and types."""

from __future__ import annotations

from typing import Any

from troy.model.cores import spmd_variation
from troy.model.validators import (
    Validator,
    arguments,
    boolean,
    environment,
    input_data,
    non_negative_int,
    non_negative_number,
    nonempty_string,
    output_data,
    positive_number,
    slot_count,
    start_time,
    string,
    string_list,
)

#: The SAGA job-description attributes named by the TROY API, plus BigJob's additions.
SAGA_FIELDS: dict[str, Validator] = {
    # pilot / agent or action
    "executable": nonempty_string,
    "arguments": arguments,
    "cleanup": boolean,
    "environment": environment,
    "interactive": boolean,
    "contact": string,
    "project": string,
    "start_time": start_time,
    "working_directory": nonempty_string,
    # I/O
    "input": nonempty_string,
    "error": nonempty_string,
    "output": nonempty_string,
    "file_transfer": string_list,
    # concurrency
    "number_of_processes": slot_count,
    "processes_per_host": slot_count,
    "threads_per_process": slot_count,
    "total_cpu_count": slot_count,
    "spmd_variation": spmd_variation,
    # requirements
    "candidate_hosts": string_list,
    "cpu_architecture": nonempty_string,
    "total_physical_memory": non_negative_int,
    "operating_system_type": nonempty_string,
    "total_cpu_time": non_negative_number,
    "wall_time_limit": positive_number,
    "queue": nonempty_string,
    # BigJob / Pilot-API additions
    "affinity_datacenter_label": string,
    "affinity_machine_label": string,
    "input_data": input_data,
    "output_data": output_data,
}


class SagaAttributes:
    """The types of the SAGA attributes, for readers and type checkers (values live elsewhere)."""

    __slots__ = ()

    executable: str | None
    arguments: list[str] | None
    cleanup: bool | None
    environment: dict[str, str] | None
    interactive: bool | None
    contact: str | None
    project: str | None
    start_time: float | int | str | None
    working_directory: str | None
    input: str | None
    error: str | None
    output: str | None
    file_transfer: list[str] | None
    number_of_processes: int | None
    processes_per_host: int | None
    threads_per_process: int | None
    total_cpu_count: int | None
    spmd_variation: str | None
    candidate_hosts: list[str] | None
    cpu_architecture: str | None
    total_physical_memory: int | None
    operating_system_type: str | None
    total_cpu_time: float | int | None
    wall_time_limit: float | int | None
    queue: str | None
    affinity_datacenter_label: str | None
    affinity_machine_label: str | None
    input_data: list[Any] | None
    output_data: list[dict[str, list[str]]] | None
