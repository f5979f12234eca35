"""A user application that exits with code 0 in the middle of a batch.

Batch 1's offsets are in ``offsets/1`` (Spark writes them before running it),
but the driver leaves while the batch runs, so ``commits/1`` never appears.
Used to check that a bounded run is judged by its checkpoint, not its exit code.
"""

import os
import sys

from pyspark.sql import SparkSession

checkpoint = sys.argv[1]
spark = SparkSession.builder.getOrCreate()


def leave_during_batch_one(frame, batch_id):
    if batch_id == 1:
        os._exit(0)


query = (
    spark.readStream.format("rate").option("rowsPerSecond", 10).load()
    .writeStream.foreachBatch(leave_during_batch_one).option("checkpointLocation", checkpoint)
    .trigger(processingTime="1 second").start()
)  # fmt: skip
query.awaitTermination()
