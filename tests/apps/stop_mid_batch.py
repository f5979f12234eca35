"""A user application that stops its query in the middle of a batch and still exits 0.

Spark's ``query.stop()`` interrupts the running batch: ``offsets/N`` is written,
``commits/N`` is not. Used to check that a bounded run is judged by its checkpoint.
"""

import sys
import time

from pyspark.sql import SparkSession

checkpoint = sys.argv[1]
spark = SparkSession.builder.getOrCreate()


def slow_batch(frame, batch_id):
    if batch_id >= 1:
        time.sleep(30)


query = (
    spark.readStream.format("rate").option("rowsPerSecond", 10).load()
    .writeStream.foreachBatch(slow_batch).option("checkpointLocation", checkpoint)
    .trigger(processingTime="1 second").start()
)  # fmt: skip
while not (query.lastProgress and query.lastProgress["batchId"] >= 0 and query.status["isTriggerActive"]):
    time.sleep(0.2)
time.sleep(3)  # batch 1 is now sleeping inside foreachBatch
query.stop()
spark.stop()
