"""Pure decisions over what the hooks read: stream progress, Kafka lag, compaction, and the verdict they yield.

No I/O here: a sensor (or its trigger) reads through a hook, then decides with these.
"""
