import os
import sys
from troy.pilot import PilotComputeService, ComputeDataService, State

COORDINATION_URL = "redis://localhost:6379"

if __name__ == "__main__":

    pilot_compute_service = PilotComputeService(COORDINATION_URL)

    # create pilot job service and initiate a pilot job
    pilot_compute_description = {
                             "service_url": 'fork://localhost',
                             "number_of_processes": 1,
                             "working_directory": os.getenv("HOME")+"/agent",
                             "walltime":10,
                             "affinity_datacenter_label": "eu-de-south",
                             "affinity_machine_label": "mymachine-1"
                            }

    pilotjob = pilot_compute_service.create_pilot(pilot_compute_description=pilot_compute_description)

    compute_data_service = ComputeDataService()
    compute_data_service.add_pilot_compute_service(pilot_compute_service)

    # start work unit
    compute_unit_description = {
            "executable": "/bin/date",
            "arguments": [""],
            "number_of_processes": 1,
            "output": "stdout.txt",
            "error": "stderr.txt",
            "affinity_datacenter_label": "eu-de-south",
            "affinity_machine_label": "mymachine-1"
    }

    compute_unit = compute_data_service.submit_compute_unit(compute_unit_description)
    print("Finished setup of PSS and PDS. Waiting for scheduling of PD")
    compute_data_service.wait()

    print("Terminate Pilot Compute/Data Service")
    compute_data_service.cancel()
    pilot_compute_service.cancel()
