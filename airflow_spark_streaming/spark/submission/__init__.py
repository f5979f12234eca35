"""Submission of drivers that outlive their task: its models, private files, the Spark provider adapter, backends."""
