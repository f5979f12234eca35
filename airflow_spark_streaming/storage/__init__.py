"""Storage: where a location lives (local disk or object storage) and what engines need to reach it."""


def __getattr__(name: str):
    # Before 0.2 this package was one module, now `storage.locations`: its names still resolve here for one release.
    from airflow_spark_streaming.storage import locations
    from airflow_spark_streaming.utils.moved_modules import moved_module_warning

    if name.startswith("__") or not hasattr(locations, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    moved_module_warning(f"{__name__}.{name}", f"{locations.__name__}.{name}")
    return getattr(locations, name)
