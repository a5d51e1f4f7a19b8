"""troy: a Pilot-Job framework in the TROY / P* style.

A pilot is one container job that acquires resources once; its agent then
runs many work units inside them.  This package exports the TROY API.
"""

from troy.api.callbacks import Callback
from troy.api.data_objects import DataUnit, PilotData
from troy.api.data_service import PilotDataService
from troy.api.objects import PilotJob, WorkUnit
from troy.api.services import PilotJobService, WorkUnitService
from troy.model.data_description import DataUnitDescription, PilotDataDescription
from troy.model.description import PilotJobDescription, WorkUnitDescription
from troy.model.errors import (
    BackendError,
    BadBatchFile,
    BadDescription,
    BadPlugin,
    CoordinationError,
    CoordinationRefused,
    NoSuchObject,
    NoSuchPlugin,
    SchedulerError,
    StoreError,
    Timeout,
    TroyError,
    UnknownAttribute,
)
from troy.model.states import PILOTJOB_TYPE, State

__version__ = "0.1.0"

__all__ = [
    "PILOTJOB_TYPE",
    "BackendError",
    "BadBatchFile",
    "BadDescription",
    "BadPlugin",
    "Callback",
    "CoordinationError",
    "CoordinationRefused",
    "DataUnit",
    "DataUnitDescription",
    "NoSuchObject",
    "NoSuchPlugin",
    "PilotData",
    "PilotDataDescription",
    "PilotDataService",
    "PilotJob",
    "PilotJobDescription",
    "PilotJobService",
    "SchedulerError",
    "State",
    "StoreError",
    "Timeout",
    "TroyError",
    "UnknownAttribute",
    "WorkUnit",
    "WorkUnitDescription",
    "WorkUnitService",
]
