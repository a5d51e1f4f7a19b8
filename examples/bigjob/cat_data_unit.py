import sys
import os
import time
from troy.pilot import PilotComputeService, PilotDataService, ComputeDataService, State

COORDINATION_URL = "redis://localhost:6379"

if __name__ == "__main__":

    print(COORDINATION_URL)
    # create pilot data service (factory for data pilots (physical, distributed storage))
    # and pilot data
    pilot_data_service = PilotDataService(coordination_url=COORDINATION_URL)
    pilot_data_description = {
                                "service_url": "ssh://localhost/" + os.getenv("HOME") + "/pilotdata",
                                "size": 100,
                                "affinity_datacenter_label": "eu-de-south",
                                "affinity_machine_label": "mymachine-1"
                             }

    pd = pilot_data_service.create_pilot(pilot_data_description=pilot_data_description)

    # create pilot compute service (factory for pilot computes)
    pilot_compute_service = PilotComputeService(coordination_url=COORDINATION_URL)
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
    compute_data_service.add_pilot_data_service(pilot_data_service)

    # create the input data unit (a file of the current directory)
    data_unit_description = {
                              "file_urls": [os.path.join(os.getcwd(), "test.txt")],
                              "affinity_datacenter_label": "eu-de-south",
                              "affinity_machine_label": "mymachine-1"
                            }
    input_data_unit = compute_data_service.submit_data_unit(data_unit_description)
    input_data_unit.wait()

    # create an empty data unit for the output
    output_data_unit_description = {
                                     "file_urls": [],
                                     "affinity_datacenter_label": "eu-de-south",
                                     "affinity_machine_label": "mymachine-1"
                                   }
    output_data_unit = compute_data_service.submit_data_unit(output_data_unit_description)
    output_data_unit.wait()

    # start compute unit
    compute_unit_description = {
            "executable": "/bin/cat",
            "arguments": ["test.txt"],
            "number_of_processes": 1,
            "output": "stdout.txt",
            "error": "stderr.txt",
            "input_data" : [input_data_unit.get_url()], # this stages the content of the data unit to the working directory of the compute unit
            "output_data": [
                            {
                             output_data_unit.get_url():
                             ["std*"]
                            }
                           ],
            "affinity_datacenter_label": "eu-de-south",
            "affinity_machine_label": "mymachine-1"
    }

    compute_unit = compute_data_service.submit_compute_unit(compute_unit_description)
    print("Finished setup of PSS and PDS. Waiting for scheduling of PD")
    compute_data_service.wait()

    print("Export the output data unit to the current directory")
    output_data_unit.export(".")

    print("Terminate Pilot Compute/Data Service")
    compute_data_service.cancel()
    pilot_data_service.cancel()
    pilot_compute_service.cancel()
