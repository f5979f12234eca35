"""The pipeline's one flow: a Kafka topic into a streaming table, Delta by the spec's spark.sql.sources.default.

The spec's configuration names the table, the topic and the brokers (sdp.orders.*); spark-pipelines runs this file
with ``spark`` set to its Spark Connect session. The table gives no ``format``: with format="delta" SDP 4.2's
second run fails (DELTA_CANNOT_CHANGE_PROVIDER, see docs/sdp-pipelines.md), so Delta comes from the default source.
"""

from pyspark import pipelines as dp

session = spark  # noqa: F821 - spark-pipelines puts the session in the module
TABLE = session.conf.get("sdp.orders.table")


@dp.table(name=TABLE, comment="Orders as read from Kafka, one row a record")
def orders():
    return (
        session.readStream.format("kafka")
        .option("kafka.bootstrap.servers", session.conf.get("sdp.orders.bootstrap_servers"))
        .option("subscribe", session.conf.get("sdp.orders.topic"))
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr(
            "CAST(key AS STRING) AS key",
            "CAST(value AS STRING) AS value",
            "topic",
            "partition AS kafka_partition",
            "offset AS kafka_offset",
        )  # fmt: skip
    )
