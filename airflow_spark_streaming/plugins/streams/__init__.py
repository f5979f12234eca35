"""The Streams page: every query the deployed DAGs name, with its status, lag and throughput.

``plugin.py`` is what Airflow loads (in every component); it builds the FastAPI app (``app.py``) only in
the API server. ``discovery.py`` lists the queries from the serialized DAGs in the metadata database,
``reader.py`` reads them through the provider's hooks behind a short cache, and ``static/`` holds the
page (a hand-written script over the host UI's React) and the vendored uPlot charting library.
Nothing here is imported when DAGs are parsed.
"""
