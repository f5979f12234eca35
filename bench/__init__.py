"""Benchmarks of airflow-spark-streaming: each prints a table and writes JSON into bench/results/."""
