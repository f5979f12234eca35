"""The hand-written PySpark equivalent of the runner spec in bench/runner_overhead.py (no listener, no lease)."""

import sys

from pyspark.sql import SparkSession

source, table, checkpoint = sys.argv[1:4]
spark = SparkSession.builder.appName("handwritten_ingest").getOrCreate()
spark.readStream.schema("id BIGINT, region STRING, amount DOUBLE, note STRING").option("maxFilesPerTrigger", 5).json(
    source
).createOrReplaceTempView("source")
frame = spark.sql("SELECT id, upper(region) AS region, amount * 1.2 AS gross, note FROM source")
query = (
    frame.writeStream.format("delta")
    .outputMode("append")
    .option("checkpointLocation", checkpoint)
    .trigger(availableNow=True)
    .start(table)
)
query.awaitTermination()
sys.exit(0 if query.exception() is None else 1)
