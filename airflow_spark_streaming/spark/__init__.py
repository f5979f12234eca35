"""Spark: JVM dependencies, YARN settings, and spark-submit for drivers that outlive their task."""
