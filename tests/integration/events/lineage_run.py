"""Run in a subprocess by test_lineage.py, so the OpenLineage settings in its environment are read at import."""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

dags = Path(__file__).resolve().parents[2] / "dags"
dag = DagBag(dag_folder=str(dags / "lineage_probe_dags.py")).dags["lineage_probe"]
run = dag.test(run_conf={"table_uri": sys.argv[1], "sink_uri": sys.argv[2], "input_uri": sys.argv[3]})
print("STATE", run.state)
