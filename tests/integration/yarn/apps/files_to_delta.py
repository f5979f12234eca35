"""A PySpark program for the YARN tests: JSON files into a Delta table with a file-source stream.

    files_to_delta.py <source dir> <table> <checkpoint> once|forever|bad-column

``once``: trigger availableNow, then exit. ``forever``: a 1 s processing-time trigger until killed.
``bad-column``: the query selects a column that does not exist, so the driver fails at analysis.
"""

import sys

from pyspark.sql import SparkSession

source, table, checkpoint, mode = sys.argv[1:5]
spark = SparkSession.builder.appName(f"yarn-test-{mode}").getOrCreate()
rows = spark.readStream.schema("id LONG, name STRING").json(source)
rows = rows.selectExpr("id", "no_such_column") if mode == "bad-column" else rows
writer = rows.writeStream.format("delta").option("checkpointLocation", checkpoint)
writer = writer.trigger(availableNow=True) if mode != "forever" else writer.trigger(processingTime="1 second")
query = writer.start(table)
query.awaitTermination()
progress = query.lastProgress
print(f"batches done; last progress: {progress and progress['batchId']}")
spark.stop()
