"""Operators of the airflow-spark-streaming provider."""
