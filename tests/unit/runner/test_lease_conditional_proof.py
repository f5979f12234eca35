"""HadoopLeaseStore's proof of S3's conditional create, against S3A stand-ins for stores no local server imitates.

The local S3 server honours ``If-None-Match: *`` (tests/integration/s3/test_s3_interop.py proves the lease
there through real S3A). A server that silently ignores the header, or one that fails mid-proof, cannot be
started here, so this fakes the few py4j calls the store makes (fault injection, no JVM).
"""

from __future__ import annotations

import pytest

from airflow_spark_streaming.runner import lease as L


class _Path:
    def __init__(self, parent, name=None):
        self.key = f"{parent.key}/{name}" if isinstance(parent, _Path) else str(parent) + (f"/{name}" if name else "")

    def getName(self):  # noqa: N802 - the Java name
        return self.key.rsplit("/", 1)[1]

    def __str__(self):
        return self.key


class _Jvm:
    class org:  # noqa: N801
        class apache:  # noqa: N801
            class hadoop:  # noqa: N801
                class fs:  # noqa: N801
                    Path = _Path


class _Stream:
    def __init__(self, fs, key, conditional):
        self.fs, self.key, self.conditional, self.data = fs, key, conditional, b""

    def write(self, data):
        self.data += bytes(data)

    def close(self):
        if self.fs.fail_close:
            raise RuntimeError("software.amazon.awssdk.core.exception.SdkClientException: Unable to execute request")
        if self.conditional and self.fs.honours and self.key in self.fs.objects:
            raise RuntimeError("RemoteFileChangedException: PUT: Status Code: 412, PreconditionFailed")
        self.fs.objects[self.key] = self.data


class _Builder:
    def __init__(self, fs, key):
        self.fs, self.key, self.conditional = fs, key, False

    def overwrite(self, _):
        return self

    def recursive(self):
        return self

    def must(self, key, _):
        self.conditional = key == L.CONDITIONAL_CREATE
        return self

    def build(self):
        return _Stream(self.fs, self.key, self.conditional)


class _S3A:
    """S3A over a store that honours If-None-Match or not; every call the store makes, recorded."""

    def __init__(self, *, honours=True, capability=True):
        self.honours, self.capability, self.fail_close = honours, capability, False
        self.objects: dict[str, bytes] = {}
        self.plain_creates = 0

    def getScheme(self):  # noqa: N802
        return "s3a"

    def hasPathCapability(self, _path, capability):  # noqa: N802
        return self.capability and capability == L.CONDITIONAL_CREATE

    def createFile(self, path):  # noqa: N802
        return _Builder(self, path.key)

    def create(self, path, _overwrite):
        self.plain_creates += 1
        return _Stream(self, path.key, conditional=False)

    def delete(self, path, _recursive):
        self.objects.pop(path.key, None)

    def listStatus(self, path):  # noqa: N802
        found = [_Status(key, self.objects[key]) for key in self.objects if key.startswith(path.key + "/")]
        if not found:
            raise RuntimeError("java.io.FileNotFoundException: no such directory")
        return found

    def getFileStatus(self, path):  # noqa: N802
        if path.key not in self.objects:
            raise RuntimeError("java.io.FileNotFoundException: no such file")
        return _Status(path.key, self.objects[path.key])

    def open(self, path):
        return _Reader(self.objects[path.key])


class _Status:
    def __init__(self, key, data):
        self.key, self.data = key, data

    def getPath(self):  # noqa: N802
        return _Path(self.key)

    def isFile(self):  # noqa: N802
        return True

    def getModificationTime(self):  # noqa: N802
        import time

        return time.time() * 1000


class _Reader:
    def __init__(self, data):
        self.data = data

    def readNBytes(self, limit):  # noqa: N802
        return self.data[:limit]

    def close(self):
        pass


def _store(fs, consistency="conditional"):
    return L.HadoopLeaseStore(_Jvm(), fs, _Path("s3a://lake/_checkpoints/orders"), consistency)


def test_a_store_that_honours_if_none_match_is_proven_once_and_leaves_no_probe():
    fs = _S3A()
    store = _store(fs)
    assert store.create_exclusive(L.generation_name(1), b"first")
    assert not store.create_exclusive(L.generation_name(1), b"second")  # 412: taken
    assert store._conditional is True and fs.plain_creates == 0
    assert list(fs.objects) == ["s3a://lake/_checkpoints/orders/_leases/00000000000000000001"]
    assert fs.objects["s3a://lake/_checkpoints/orders/_leases/00000000000000000001"] == b"first"


def test_a_store_that_ignores_if_none_match_is_refused_unless_best_effort(capsys):
    fs = _S3A(honours=False)
    with pytest.raises(L.ConditionalCreateUnavailable, match="accepted a second create of one key: it ignores "
                                                             "If-None-Match.*lease_consistency='best_effort'"):  # fmt: skip
        L.RunnerLease(_store(fs), ttl_ms=2_000).acquire()
    assert fs.objects == {}  # no lease, and the probe is gone

    best = _store(fs, "best_effort")
    assert L.RunnerLease(best, ttl_ms=2_000).acquire().generation == 1
    assert best._conditional is False and fs.plain_creates == 1  # said so, then created without the condition
    assert "(lease_consistency=best_effort): the store accepted a second create" in capsys.readouterr().err


def test_an_s3a_without_the_capability_is_refused_before_any_request():
    fs = _S3A(capability=False)
    with pytest.raises(L.ConditionalCreateUnavailable, match="reports no fs.option.create.conditional.overwrite"):
        _store(fs).create_exclusive(L.generation_name(1), b"x")
    assert fs.objects == {}


def test_a_store_failing_during_the_proof_is_a_store_error_not_a_verdict():
    fs = _S3A()
    fs.fail_close = True
    store = _store(fs)
    with pytest.raises(L.LeaseStoreError) as err:
        store.create_exclusive(L.generation_name(1), b"x")
    assert not isinstance(err.value, L.ConditionalCreateUnavailable) and "Unable to execute request" in str(err.value)
    fs.fail_close = False
    assert store._conditional is None and store.create_exclusive(L.generation_name(1), b"x")  # proven on retry
    with pytest.raises(ValueError, match="lease consistency 'eventual'"):
        _store(fs, "eventual")
