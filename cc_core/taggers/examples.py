"""Jobs that fire each built-in tag exactly: for the demo generator, the docs and the tests.

`APP_SCRIPTS` maps every built-in app to a job script (``metaData.jobScript``) that the built-in rules
tag with that app and no other; `QUIET_SCRIPT` is tagged with none. `JOBCLASS_STATS` maps every built-in
job class to job statistics that — with `REFERENCE_LIMITS` (the fritz cluster's ``main`` subcluster
from upstream's reference archive), a job that is not shared (``shared: "none"``) and runs longer than
600 s — fire that class and no other; `HEALTHY_STATS` fire none. The tests in ``tests/taggers`` check
every entry against the shipped rules, so these stay true when rules change.
"""

from __future__ import annotations

from typing import Any

APP_SCRIPTS: dict[str, str] = {
    "alf": "#!/bin/bash\n#SBATCH --nodes=1\nsrun ./alf input.toml\n",
    "caracal": "#!/bin/bash\nmodule load caracal\nsrun calc_rate -i reaction.inp\n",
    "chroma": "#!/bin/bash\nsrun ./chroma -i hmc.ini.xml\n",
    "cp2k": "#!/bin/bash\nmodule load cp2k/2024.1\nsrun cp2k.psmp -i h2o.inp\n",
    "cpmd": "#!/bin/bash\nsrun cpmd.x si64.inp > si64.out\n",
    "flame": "#!/bin/bash\nsrun ./flame -config run.cfg\n",
    "gromacs": "#!/bin/bash\nmodule load gromacs/2023\nsrun gmx_mpi mdrun -deffnm md\n",
    "julia": "#!/bin/bash\nsrun julia --project run.jl\n",
    "lammps": "#!/bin/bash\nmodule load lammps\nsrun lmp -in in.lj\n",
    "matlab": "#!/bin/bash\nmodule load matlab/R2023b\nsrun matlab -batch solve\n",
    "openfoam": "#!/bin/bash\nmodule load OpenFOAM/v2306\nsrun simpleFoam -parallel\n",
    "orca": "#!/bin/bash\n$ORCA_DIR/orca water.inp > water.out\n",
    "python": "#!/bin/bash\nsrun python3 train.py --epochs 10\n",
    "starccm": "#!/bin/bash\nsrun starccm+ -batch run.java sim.sim\n",
    "turbomole": "#!/bin/bash\nsrun ridft > ridft.out\n",
    "vasp": "#!/bin/bash\nmodule load vasp6\nsrun vasp_std\n",
}

# Commented lines never count: this script mentions several apps, all behind a '#'.
QUIET_SCRIPT = (
    "#!/bin/bash\n#SBATCH --job-name=gromacs-test\n# python helper disabled\nsrun ./a.out  # was: vasp_std\n"
)

#: Limits of the metrics the job-class rules read (fritz, subcluster main; upstream reference archive).
REFERENCE_LIMITS: dict[str, dict[str, float]] = {
    "cpu_load": {"peak": 72.0, "normal": 72.0, "caution": 36.0, "alert": 20.0},
    "mem_used": {"peak": 256.0, "normal": 128.0, "caution": 200.0, "alert": 240.0},
    "flops_any": {"peak": 5600.0, "normal": 1000.0, "caution": 200.0, "alert": 50.0},
    "mem_bw": {"peak": 350.0, "normal": 100.0, "caution": 50.0, "alert": 10.0},
}

#: Statistics ({min, max, avg} per metric) of a job no built-in class fires on.
HEALTHY_STATS: dict[str, dict[str, float]] = {
    "cpu_load": {"min": 60.0, "max": 72.0, "avg": 70.0},  # between 0.85 and 1.2 × peak 72
    "mem_used": {"min": 20.0, "max": 100.0, "avg": 80.0},  # max below alert 240
    "flops_any": {"min": 100.0, "max": 900.0, "avg": 500.0},  # above alert 50
    "mem_bw": {"min": 50.0, "max": 150.0, "avg": 100.0},  # above alert 10, below 0.8 × peak 350
}

#: Per job class: the statistics that differ from `HEALTHY_STATS` to fire it (and only it).
JOBCLASS_STATS: dict[str, dict[str, dict[str, float]]] = {
    # highload.json: cpu_load.avg > cpu_load.limits.peak * 1.2 (= 86.4)
    "excessiveload": {"cpu_load": {"min": 80.0, "max": 110.0, "avg": 95.0}},
    # lowload.json: cpu_load.avg < cpu_load.limits.peak * 0.85 (= 61.2)
    "lowload": {"cpu_load": {"min": 10.0, "max": 40.0, "avg": 30.0}},
    # highMemoryUsage.json: mem_used.max > mem_used.limits.alert (240)
    "highmemory": {"mem_used": {"min": 100.0, "max": 250.0, "avg": 200.0}},
    # lowUtilization.json: flops_any.avg < alert (50) and mem_bw.avg < alert (10)
    "lowutilization": {
        "flops_any": {"min": 0.0, "max": 60.0, "avg": 20.0},
        "mem_bw": {"min": 1.0, "max": 12.0, "avg": 5.0},
    },
    # memoryBound.json: mem_bw.avg > mem_bw.limits.peak * 0.8 (= 280)
    "memorybound": {"mem_bw": {"min": 250.0, "max": 340.0, "avg": 300.0}},
}

#: The job fields every job-class rule requires (``requirements`` of all shipped rules).
JOB_REQUIREMENTS: dict[str, Any] = {"shared": "none", "min_duration_exclusive": 600}


def jobclass_statistics(tag: str | None) -> dict[str, dict[str, float]]:
    """`HEALTHY_STATS` with the changes that fire ``tag`` (None: fire nothing)."""
    stats = {m: dict(v) for m, v in HEALTHY_STATS.items()}
    if tag is not None:
        stats.update({m: dict(v) for m, v in JOBCLASS_STATS[tag].items()})
    return stats
