"""The stream runner: its control protocol and lease, the spec it runs, and the PySpark jobs it ships.

Standard library only at import time: the Spark-side drivers import this package (from the
installed provider, or from the ``--py-files`` zip on YARN), and Airflow-side code never imports
the jobs themselves.
"""
