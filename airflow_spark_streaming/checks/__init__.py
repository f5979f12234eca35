"""Sensor checks: one object per sensor and trigger pair, holding the criteria and the state it carries.

Each check reads through a hook and decides with :mod:`airflow_spark_streaming.conditions`,
returning a :class:`~airflow_spark_streaming.conditions.verdict.Verdict`. The sensor's
``poke`` calls :meth:`~airflow_spark_streaming.checks._base.SensorCheck.evaluate` directly,
its trigger the same method of the same check (rebuilt from the trigger's kwargs) through
``asyncio.to_thread``, so both modes decide alike. One module per kind:
:mod:`~airflow_spark_streaming.checks.progress`, :mod:`~airflow_spark_streaming.checks.lag`,
:mod:`~airflow_spark_streaming.checks.stream_health`, :mod:`~airflow_spark_streaming.checks.delta`.
"""
