"""The s3fs filesystem of a storage connection (or of boto's default chain), with the store's failures named.

:meth:`StorageHook.object_storage_fs <airflow_spark_streaming.hooks.storage.StorageHook.object_storage_fs>`
wraps the Amazon provider's s3fs filesystem in :class:`NamedFailuresFileSystem`;
:func:`path_on` puts an ``ObjectStoragePath`` on it. Airflow is imported inside functions.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_spark_streaming.hooks.storage import StorageHook


class NamedFailuresFileSystem:
    """An fsspec filesystem (s3fs) whose failures against the store raise the named storage errors.

    Every public call, and every call on a file it opens, that fails with an error
    :func:`classify_storage_failure` recognises raises :class:`StorageUnreachableError`,
    :class:`StorageAccessDeniedError` or :class:`BucketNotFoundError`, naming the endpoint,
    the path and the fix, with the time the call took; anything else (a missing file) is
    raised unchanged. Made by :meth:`StorageHook.object_storage_fs`.
    """

    def __init__(self, fs, hook: StorageHook) -> None:
        self.fs = fs
        self.hook = hook

    def __repr__(self) -> str:
        return f"NamedFailuresFileSystem({self.fs!r}, {self.hook.source})"

    def __getattr__(self, name: str) -> Any:
        if name in ("fs", "hook"):  # not set yet (a copy being made)
            raise AttributeError(name)
        attribute = getattr(self.fs, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return self.named(attribute, opens=name == "open")

    def exists(self, path, **kwargs) -> bool:
        """Whether ``path`` exists, by one ``info`` call: s3fs's own ``exists`` answers ``False`` for a bucket that
        does not exist (it takes ``NoSuchBucket`` for a missing file), where this raises :class:`BucketNotFoundError`
        (a checkpoint sensor must not wait for a checkpoint in a bucket that is not there)."""
        try:
            self.named(self.fs.info)(path, **kwargs)
        except FileNotFoundError:
            return False
        return True

    def named(self, call, url: str | None = None, *, opens: bool = False):
        """``call`` with its failures named; ``url`` (else its first argument) is the path a message names.
        ``opens``: the call returns a file, whose calls are named too."""

        @functools.wraps(call)
        def named_call(*args, **kwargs):
            where = url or self._url(args[0] if args else kwargs.get("path"))
            started = time.monotonic()
            try:
                result = call(*args, **kwargs)
            except Exception as err:
                named = self.hook.translate(err, where, elapsed=time.monotonic() - started, probe=False)
                if named is err:
                    raise
                raise named from err
            return NamedFailuresFile(result, self, where) if opens else result

        return named_call

    def _url(self, path: Any) -> str:
        if isinstance(path, str) and path:
            return f"s3://{self.fs._strip_protocol(path)}"
        return f"the store of {self.hook.source}"


class NamedFailuresFile:
    """A file opened by :class:`NamedFailuresFileSystem`: reads, writes and the upload on close raise named errors."""

    def __init__(self, handle, fs: NamedFailuresFileSystem, url: str) -> None:
        self.handle, self._fs, self._url = handle, fs, url

    def __getattr__(self, name: str) -> Any:
        if name in ("handle", "_fs", "_url"):
            raise AttributeError(name)
        attribute = getattr(self.handle, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return self._fs.named(attribute, self._url)

    def __enter__(self) -> NamedFailuresFile:
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._fs.named(self.handle.__exit__, self._url)(*exc_info)

    def __iter__(self):
        return iter(self.handle)


@functools.cache
def _path_class() -> type:
    from airflow.sdk import ObjectStoragePath

    class FileSystemObjectStoragePath(ObjectStoragePath):
        """An ``ObjectStoragePath`` whose filesystem is the one its wrapped path holds."""

        @property
        def fs(self):
            return self.__wrapped__.fs

    return FileSystemObjectStoragePath


def path_on(fs: Any, url: str, conn_id: str | None):
    """``ObjectStoragePath`` for ``url`` whose every operation, and every path made from it, goes through ``fs``.

    Airflow's path keeps one filesystem per connection (made without the options a path is given) and sets
    it on the path it wraps; this one sets ``fs`` there instead, and answers ``.fs`` with it.
    """
    path = _path_class()(url, conn_id=conn_id)
    path.__wrapped__._fs_cached = fs
    return path
