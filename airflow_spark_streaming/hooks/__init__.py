"""Hooks of the airflow-spark-streaming provider."""
