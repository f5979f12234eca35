"""Triggers of the airflow-spark-streaming provider."""
