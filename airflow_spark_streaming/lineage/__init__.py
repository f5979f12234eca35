"""OpenLineage datasets for the provider's operators."""


def __getattr__(name: str):
    # Before 0.2 this package was one module, now `lineage.datasets`: its names still resolve here for one release.
    from airflow_spark_streaming.lineage import datasets
    from airflow_spark_streaming.utils.moved_modules import moved_module_warning

    if name.startswith("__") or not hasattr(datasets, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    moved_module_warning(f"{__name__}.{name}", f"{datasets.__name__}.{name}")
    return getattr(datasets, name)
