"""Sensors of the airflow-spark-streaming provider."""
