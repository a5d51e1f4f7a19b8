"""Pilot-Data in a few lines: a data unit staged into four units, their outputs staged out.

Run it anywhere: python examples/data_staging.py (it works in ./data-demo).
"""

import pathlib

import troy

work = pathlib.Path("data-demo").absolute()
work.mkdir(exist_ok=True)
(work / "genome.txt").write_text("GATTACA\n" * 1000)

pds = troy.PilotDataService()
store = pds.create({"service_url": (work / "store").as_uri(), "affinity_machine_label": "here"})
genome = store.submit_data_unit({"file_urls": [str(work / "genome.txt")]})
results = store.submit_data_unit({"file_urls": []})  # filled by the units' output_data

pilots = troy.PilotJobService()
pilots.create("fork://localhost", {"number_of_processes": 2, "affinity_machine_label": "here"})
units = troy.WorkUnitService(scheduler="data_aware")
units.add(pilots)
counts = units.submit(
    [
        {
            "executable": "/bin/sh",
            "arguments": ["-c", f"grep -o {base} genome.txt | wc -l > count-{base}.txt"],
            "input_data": [genome.get_url()],
            "output_data": [{results.get_url(): ["count-*.txt"]}],
        }
        for base in "ACGT"
    ]
)
units.wait()
print([(str(u.state), u.transfers[0]["bytes"], u.transfers[0]["local"]) for u in counts])
print(results.list_files())  # ['count-A.txt', ...]
results.export(work / "results")
print((work / "results" / "count-A.txt").read_text().strip())  # 3000
pilots.cancel()
