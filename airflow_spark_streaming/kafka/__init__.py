"""Kafka: the ``kafka`` connection turned into Spark options and admin clients, broker records, and their errors."""
