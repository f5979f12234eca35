"""Local development stack: a real Kafka broker and a real Spark standalone cluster on 127.0.0.1.

Used by the test suite and the demo; not part of the installed provider.
"""
