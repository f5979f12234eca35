"""The checkpoint lease: at most one live stream runner per checkpoint.

Imported by the stream runner (a PySpark program) and by the Airflow hooks, so
it needs only the standard library at import time; Spark's JVM gateway is
passed in at run time. Layout under the checkpoint::

    _leases/<generation>    one JSON record per taker; generations only grow

* **Taking** the lease is an exclusive create of generation N+1 after seeing
  generation N released or stale. The store's create-if-absent is the
  compare-and-set: of two takers, exactly one creates the file.
* **Renewing** first checks that no higher generation exists and that the own
  file still names this owner, then rewrites only that file. An owner never
  writes another generation, so a paused owner that resumes cannot clobber a
  newer one; it sees the newer generation and gives up.
* **Releasing** stops and joins the renew thread, then marks the own
  generation released. The newest file is never deleted, so generation numbers
  are never reused; older generations are pruned.
* **Reading** bounds clocks: the TTL is clamped, a heartbeat is never later
  than ``MAX_CLOCK_SKEW_MS`` past the file's modification time or the moment
  the reader first saw it, and an unreadable (torn) record is held for a TTL
  from when it was first seen (or written).

One module of about 500 lines, on purpose: the rule and the stores whose
atomic create it relies on are reviewed together.

Exclusion relies on an atomic create-if-absent: local disk (``os.link``), HDFS
(``create(overwrite=false)`` at the NameNode) and S3A with conditional create
(``If-None-Match: *``, Hadoop 3.5+). On S3A it is required: a store that cannot
prove it (:class:`ConditionalCreateUnavailable`) is refused unless the spec opts
into ``lease_consistency="best_effort"``, where a double take is only found at
the next renewal and the loser stops.

Clocks: a heartbeat is the writer's wall clock, bounded by the store's
modification time and the reader's first sight plus ``MAX_CLOCK_SKEW_MS``. A
holder renewing every TTL/3 is never judged stale while the skew between its
clock and a reader's (or the store's, beyond ``MAX_CLOCK_SKEW_MS``) stays under
``2/3 * TTL`` minus the renewal's own time; the holder's own decisions (losing
the lease after a silent TTL) use its monotonic clock only.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from airflow_spark_streaming.runner.protocol import (
    DEFAULT_LEASE_TTL_SECONDS,
    LEASE_CONSISTENCY,
    LEASE_DIR,
    LEGACY_LEASE_FILE,
    UNSAFE_LEASE_STORE_MARKER,
)
from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, load_object

DEFAULT_TTL_MS = DEFAULT_LEASE_TTL_SECONDS * 1000
MIN_TTL_MS = 1_000
MAX_TTL_MS = 3_600_000  # the spec's own bound; a larger ttl_ms on disk is clamped to it
MAX_CLOCK_SKEW_MS = 5_000
MAX_RECORD_BYTES = 64 * 1024
RECORD_VERSION = 1
# A generation's name is exactly 20 ASCII digits; the largest is far below the 20-digit limit, so the
# next name is always listable. Anything else in _leases/ (a planted 21-digit name, "²", a stray file)
# is foreign: the lease reads as taken, never as free.
_GENERATION = re.compile(r"^([0-9]{20})$", re.ASCII)
MAX_GENERATION = 10**18
# The stores' own temporaries: the local store's hidden ".<name>.<hex>.tmp", Hadoop's "._COPYING_" and ".crc".
_TEMPORARY = re.compile(r"^\..*\.(tmp|crc)$|\._COPYING_$", re.ASCII)
#: More names than this in _leases/ is not the runner's doing (it prunes to one or two): the lease reads as taken.
MAX_LEASE_NAMES = 1_000
CONDITIONAL_CREATE = "fs.option.create.conditional.overwrite"  # Hadoop 3.5 S3A: If-None-Match: *
CONDITIONAL_CREATE_ENABLED = "fs.s3a.create.conditional.enabled"
# S3A GETs a file with If-Match on the ETag it saw first: a renewal in between fails the read with 412.
_CHANGED_WHILE_READING = ("RemoteFileChangedException", "Status Code: 412", "pre-conditions you specified")
_READ_ATTEMPTS = 3
# A create-if-absent that lost: the file exists (a prior check), or the store refused the upload (HTTP 412).
_CREATE_REFUSED = ("FileAlreadyExists", "PreconditionFailed", "412", "already exists", "RemoteFileChanged")
# S3A that cannot do it: an unknown mandatory option (before Hadoop 3.5), or conditional writes turned off.
_NO_CONDITIONAL_CREATE = ("IllegalArgumentException", "Unknown mandatory key", "UnsupportedOperationException",
                          "Conditional Writes Unavailable")  # fmt: skip


class CheckpointInUse(RuntimeError):
    """A live query already holds the checkpoint's lease."""


class LeaseLost(RuntimeError):
    """This runner no longer holds the lease: another took over, or renewal failed for a whole TTL."""


class LeaseStoreError(OSError):
    """The lease file could not be read or written."""


class ConditionalCreateUnavailable(LeaseStoreError):
    """The store cannot create a lease file only-if-absent (S3 without conditional writes); the lease is refused."""


def conditional_create_refusal(where: str, missing: str) -> str:
    """The message of :class:`ConditionalCreateUnavailable`: what is missing, and the two ways out."""
    return (
        f"{UNSAFE_LEASE_STORE_MARKER} on {where}, but {missing}. Two stream runners could "
        f"then both take the lease. Use Hadoop 3.5+ S3A with {CONDITIONAL_CREATE_ENABLED}=true on a store with "
        f"conditional writes (If-None-Match: *), or accept a double take found only at the next renewal with "
        f"lease_consistency='best_effort' (the operator parameter, or the spec key)"
    )


class LeaseStore(Protocol):
    """Where lease files live; names are relative to the checkpoint root."""

    def list_names(self, folder: str) -> list[str]: ...  # a missing folder lists as empty
    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None: ...  # (at most limit+1 bytes, mtime ms)
    def create_exclusive(self, name: str, data: bytes) -> bool: ...  # False: the file exists
    def overwrite(self, name: str, data: bytes) -> None: ...
    def delete(self, name: str) -> None: ...


def generation_name(generation: int) -> str:
    return f"{LEASE_DIR}/{generation:020d}"


def generations(names: list[str]) -> list[int]:
    """Generation numbers among a listing of ``_leases/``; temporary and foreign files are skipped."""
    return sorted(n for n in (int(m.group(1)) for m in map(_GENERATION.match, names) if m) if n <= MAX_GENERATION)


def foreign_names(names: list[str]) -> list[str]:
    """Names in ``_leases/`` that neither the runner nor a store's temporaries wrote: they hold the lease."""
    if len(names) > MAX_LEASE_NAMES:
        return sorted(names)[:5] + [f"... {len(names)} names in all"]
    valid = {generation_name(n).rsplit("/", 1)[1] for n in generations(names)}
    return sorted(name for name in names if name not in valid and not _TEMPORARY.search(name))


@dataclass(frozen=True)
class LeaseRecord:
    generation: int
    owner: str
    heartbeat_ms: int
    ttl_ms: int
    released: bool = False
    host: str | None = None
    pid: int | None = None
    app_id: str | None = None
    submission: str | None = None

    def to_bytes(self) -> bytes:
        return json.dumps({"version": RECORD_VERSION, **asdict(self)}).encode()

    @classmethod
    def parse(cls, data: bytes, generation: int) -> LeaseRecord:
        """The record in ``data``; ``ValueError`` if it is torn, too big or not a lease."""
        body = load_object(data, max_bytes=MAX_RECORD_BYTES)  # UntrustedJsonError is a ValueError
        ints = {key: body.get(key) for key in ("heartbeat_ms", "ttl_ms")}
        if any(isinstance(v, bool) or not isinstance(v, int | float) or v != v for v in ints.values()):
            raise ValueError("lease record has no numeric heartbeat_ms/ttl_ms")
        pid = body.get("pid")
        return cls(
            generation=generation,
            owner=str(body.get("owner") or ""),
            heartbeat_ms=int(min(max(ints["heartbeat_ms"], -(2**62)), 2**62)),
            ttl_ms=int(min(max(ints["ttl_ms"], 0), 2**62)),
            released=body.get("released") is True,
            host=body.get("host") if isinstance(body.get("host"), str) else None,
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            app_id=body.get("app_id") if isinstance(body.get("app_id"), str) else None,
            submission=body.get("submission") if isinstance(body.get("submission"), str) else None,
        )


@dataclass(frozen=True)
class LeaseState:
    """What a reader concludes about a checkpoint's lease. ``record`` is None when free or unreadable."""

    held: bool
    reason: str  # free | released | live | stale | unreadable | unreadable-stale | foreign
    generation: int | None = None
    record: LeaseRecord | None = None
    heartbeat_age_ms: float | None = None
    ttl_ms: int | None = None
    foreign: tuple[str, ...] = ()  # names in _leases/ the runner did not write (reason "foreign")


def clamp_ttl(ttl_ms: float) -> int:
    return int(min(max(ttl_ms, MIN_TTL_MS), MAX_TTL_MS))


def judge(
    data: bytes | None,
    generation: int,
    *,
    now_ms: float,
    written_ms: float | None = None,
    first_seen_ms: float | None = None,
    fallback_ttl_ms: int = DEFAULT_TTL_MS,
) -> LeaseState:
    """Liveness of one lease file's content: the one rule both the runner and Airflow apply.

    ``written_ms`` is the store's modification time, ``first_seen_ms`` when this
    reader first saw exactly this content (defaults to now). A heartbeat later
    than either of those plus ``MAX_CLOCK_SKEW_MS`` is pulled back to it, so a
    clock in the future cannot keep a dead lease alive; the TTL is clamped to
    ``[MIN_TTL_MS, MAX_TTL_MS]``. Unreadable content is held for
    ``fallback_ttl_ms`` from the earlier of first sight and its write time.
    """
    seen = now_ms if first_seen_ms is None else min(first_seen_ms, now_ms)
    latest_heartbeat = (seen if written_ms is None else min(seen, written_ms)) + MAX_CLOCK_SKEW_MS
    anchor = seen if written_ms is None else min(seen, written_ms + MAX_CLOCK_SKEW_MS)
    try:
        record = LeaseRecord.parse(data, generation) if data is not None else None
    except (ValueError, UnicodeDecodeError, UntrustedJsonError):
        record = None
    if record is None:
        ttl = clamp_ttl(fallback_ttl_ms)
        age = max(0.0, now_ms - anchor)
        return LeaseState(age < ttl, "unreadable" if age < ttl else "unreadable-stale", generation, None, age, ttl)
    if record.released:
        return LeaseState(False, "released", generation, record, None, clamp_ttl(record.ttl_ms))
    ttl = clamp_ttl(record.ttl_ms)
    heartbeat = min(record.heartbeat_ms, latest_heartbeat)
    age = max(0.0, now_ms - heartbeat)
    return LeaseState(age < ttl, "live" if age < ttl else "stale", generation, record, age, ttl)


class LeaseReader:
    """Reads the newest lease generation, remembering when each content was first seen."""

    def __init__(self, store: LeaseStore, fallback_ttl_ms: int = DEFAULT_TTL_MS, clock=time.time):
        self.store, self.fallback_ttl_ms, self._clock = store, fallback_ttl_ms, clock
        self._first_seen: dict[tuple[str, bytes | None], float] = {}

    def _judge(self, name: str, generation: int) -> LeaseState | None:
        got = self.store.read(name, MAX_RECORD_BYTES)
        if got is None:
            return None
        data, written_ms = got
        now_ms = self._clock() * 1000
        first = self._first_seen.setdefault((name, data), now_ms)
        return judge(data, generation, now_ms=now_ms, written_ms=written_ms, first_seen_ms=first,
                     fallback_ttl_ms=self.fallback_ttl_ms)  # fmt: skip

    def state(self, *, legacy: bool = True) -> tuple[LeaseState, int]:
        """The lease's state and the newest generation number (0 when none was ever taken)."""
        names = self.store.list_names(LEASE_DIR)
        foreign = foreign_names(names)
        if foreign:
            return LeaseState(True, "foreign", None, None, foreign=tuple(foreign)), MAX_GENERATION
        numbers = generations(names)
        newest = numbers[-1] if numbers else 0
        state = self._judge(generation_name(newest), newest) if numbers else None
        if (state is None or not state.held) and legacy:
            old = self._judge(LEGACY_LEASE_FILE, 0)
            if old is not None and old.held:
                return old, newest
        return state or LeaseState(False, "free", None), newest


def read_lease_state(store: LeaseStore, *, now: float | None = None, fallback_ttl_ms: int = DEFAULT_TTL_MS):
    """The Airflow side's one call: is the checkpoint's lease held, and by whom (``LeaseState``)."""
    clock = time.time if now is None else (lambda: now)
    return LeaseReader(store, fallback_ttl_ms, clock).state()[0]


def describe_holder(state: LeaseState) -> str:
    record = state.record
    if state.reason == "foreign":
        return (
            f"files in {LEASE_DIR}/ that no runner wrote ({', '.join(state.foreign)}); a lease is only ever "
            f"named by 20 digits. Remove them once you know no query runs on this checkpoint"
        )
    if record is None:
        return f"an unreadable lease (generation {state.generation}, being written or torn)"
    return (
        f"Spark application {record.app_id} on {record.host} (pid {record.pid}, lease generation "
        f"{record.generation}, heartbeat {(state.heartbeat_age_ms or 0) / 1000:.1f}s ago)"
    )


class RunnerLease:
    """This runner's lease on a checkpoint: take it, keep it renewed, give it back.

    ``on_lost(reason)`` is called once, from the renew thread, when the lease is
    lost: another runner took over, or renewal failed for a whole TTL (store
    errors are retried with backoff until then). The runner must then stop its
    query after the current batch; the lease is never written again.
    """

    def __init__(self, store: LeaseStore, *, ttl_ms: int = DEFAULT_TTL_MS, identity: dict[str, Any] | None = None,
                 on_lost: Callable[[str], None] | None = None, clock=time.time, monotonic=time.monotonic):  # fmt: skip
        self.store, self.ttl_ms, self.on_lost = store, clamp_ttl(ttl_ms), on_lost
        self.owner = str(uuid.uuid4())
        self.identity = {k: v for k, v in (identity or {}).items() if k in ("host", "pid", "app_id", "submission")}
        self._clock, self._monotonic = clock, monotonic
        self.generation: int | None = None
        self.lost = threading.Event()
        self.lost_reason: str | None = None
        self._losing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_renewed = 0.0

    def _record(self, generation: int, released: bool = False) -> LeaseRecord:
        now_ms = int(self._clock() * 1000)
        return LeaseRecord(generation, self.owner, now_ms, self.ttl_ms, released, **self.identity)

    def acquire(self, attempts: int = 20, poll: float = 0.2) -> LeaseRecord:
        """Take the lease or raise :class:`CheckpointInUse`; an unreadable newest lease is waited out."""
        reader = LeaseReader(self.store, self.ttl_ms, self._clock)
        give_up = self._monotonic() + (self.ttl_ms + MAX_CLOCK_SKEW_MS) / 1000 + 5
        while attempts > 0:
            state, newest = reader.state()
            if state.held:
                if state.record is None and state.reason != "foreign" and self._monotonic() < give_up:
                    time.sleep(poll)  # being written right now, or torn: held until its TTL has passed
                    continue
                raise CheckpointInUse(f"the checkpoint is in use by {describe_holder(state)}")
            attempts -= 1
            generation = newest + 1
            if generation > MAX_GENERATION:
                raise CheckpointInUse(f"the lease's generations are exhausted ({newest}); start a new checkpoint")
            record = self._record(generation)
            if not self.store.create_exclusive(generation_name(generation), record.to_bytes()):
                continue  # another taker won this generation; look again
            if generations(self.store.list_names(LEASE_DIR))[-1] > generation:
                self.store.delete(generation_name(generation))  # a stale view: a newer generation exists
                continue
            self.generation, self._last_renewed = generation, self._monotonic()
            for old in generations(self.store.list_names(LEASE_DIR)):
                if old < generation:
                    self._quietly(self.store.delete, generation_name(old))
            return record
        raise CheckpointInUse("the checkpoint's lease changed hands on every attempt; another runner is starting")

    @staticmethod
    def _quietly(action, *args) -> None:
        try:
            action(*args)
        except OSError:
            pass  # pruning old generations is housekeeping; the next taker retries it

    def _check_ownership(self) -> bool:
        """:class:`LeaseLost` unless this runner's generation is the newest and names it; False if unreadable."""
        if self.generation is None or self.lost.is_set():
            raise LeaseLost(self.lost_reason or "the lease was never taken")
        names = self.store.list_names(LEASE_DIR)
        if foreign_names(names):
            raise LeaseLost(f"files no runner wrote appeared in {LEASE_DIR}/: {', '.join(foreign_names(names))}")
        newest = generations(names)
        if newest and newest[-1] > self.generation:
            raise LeaseLost(f"another runner took the lease over (generation {newest[-1]} > {self.generation})")
        name = generation_name(self.generation)
        got = self.store.read(name, MAX_RECORD_BYTES)
        if got is None:
            raise LeaseLost(f"the lease file {name} was removed by someone else")
        try:
            mine = LeaseRecord.parse(got[0], self.generation)
        except (ValueError, UnicodeDecodeError, UntrustedJsonError):
            return False  # torn by this runner's own failed rewrite: only this runner writes this name
        if mine.owner != self.owner or mine.released:
            raise LeaseLost(f"the lease file {name} no longer names this runner")
        return True

    def renew_once(self) -> None:
        """Check ownership, then rewrite the own generation; :class:`LeaseLost` if another owns the lease."""
        checked = self._monotonic()
        self._check_ownership()
        self.store.overwrite(generation_name(self.generation), self._record(self.generation).to_bytes())
        if self._monotonic() - checked >= self.ttl_ms / 1000:
            raise LeaseLost("the renewal itself took longer than the TTL (was the process paused?)")
        self._last_renewed = self._monotonic()

    def _lose(self, reason: str) -> None:
        with self._losing:
            if self.lost.is_set():
                return
            self.lost_reason = reason
            self.lost.set()
        if self.on_lost is not None:
            self.on_lost(reason)

    def _silence_reason(self, last_error: BaseException | None = None) -> str | None:
        silent = self._monotonic() - self._last_renewed
        if silent < self.ttl_ms / 1000:
            return None
        if last_error is not None:
            return f"the lease could not be renewed within its TTL: {last_error}"
        return (
            f"the lease was not renewed for {silent:.1f}s (was the process paused?), "
            f"longer than its {self.ttl_ms / 1000:g}s TTL"
        )

    def confirm(self) -> bool:
        """Whether this runner still holds the lease, checked now from any thread (``lost`` is set if not).

        The runner asks before deciding how it ended: after a pause, its query
        can fail before the renew thread wakes up to notice the lease is gone.
        """
        if self.lost.is_set() or self.generation is None:
            return not self.lost.is_set()
        reason = self._silence_reason()
        if reason is None:
            try:
                self._check_ownership()
                return True
            except LeaseLost as err:
                reason = str(err)
            except Exception:  # noqa: BLE001 - a store error: the renew thread keeps judging within the TTL
                return True
        self._lose(reason)
        return False

    def _renew_loop(self) -> None:
        interval, first_backoff = self.ttl_ms / 3000, min(0.2, self.ttl_ms / 6000)
        wait, backoff, last_error = interval, first_backoff, None
        while not self._stop.wait(wait):
            reason = self._silence_reason(last_error)  # store errors all along, or the process was paused
            if reason is not None:
                self._lose(reason)
                return
            try:
                self.renew_once()
                wait, backoff, last_error = interval, first_backoff, None
            except LeaseLost as err:
                self._lose(str(err))
                return
            except Exception as err:  # noqa: BLE001 - a store error: retried until the TTL runs out
                last_error = err
                left = self.ttl_ms / 1000 - (self._monotonic() - self._last_renewed)
                wait, backoff = max(0.0, min(backoff, left)), min(backoff * 2, interval)

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="checkpoint-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop and join the renew thread, then mark the own generation released (if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.generation is None or self.lost.is_set():
            return
        try:
            self._check_ownership()
            self.store.overwrite(generation_name(self.generation), self._record(self.generation, True).to_bytes())
        except (LeaseLost, OSError):
            pass  # someone else owns it now, or the store is down: the lease expires by itself
        finally:
            self.generation = None


class LocalLeaseStore:
    """Lease files on a local (or POSIX-shared) disk. Create is ``link(tmp, target)``: atomic, never torn."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("/"))

    def list_names(self, folder: str) -> list[str]:
        try:
            return os.listdir(self._path(folder))
        except FileNotFoundError:
            return []

    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None:
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise LeaseStoreError(f"{self._path(name)} is not a regular file")
            chunks, size = [], 0
            while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks), info.st_mtime * 1000
        finally:
            os.close(fd)

    def _write_temp(self, name: str, data: bytes) -> str:
        target = self._path(name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return temp

    def create_exclusive(self, name: str, data: bytes) -> bool:
        temp = self._write_temp(name, data)
        try:
            os.link(temp, self._path(name))  # fails if the target exists; readers see all or nothing
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temp)

    def overwrite(self, name: str, data: bytes) -> None:
        os.replace(self._write_temp(name, data), self._path(name))

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass


def _java_names(err: BaseException) -> str:
    """The Java exception classes and messages behind a py4j error, for telling 'exists' from failure."""
    found, java = [], getattr(err, "java_exception", None)
    while java is not None and len(found) < 10:
        found.append(f"{java.getClass().getName()}: {java.getMessage()}")
        java = java.getCause()
    return " | ".join(found) or str(err)


class HadoopLeaseStore:
    """Lease files through Hadoop's FileSystem over the py4j gateway (HDFS, S3A, ABFS, GCS...).

    On S3A the create-if-absent is Hadoop 3.5's conditional create
    (``createFile().overwrite(false).must(CONDITIONAL_CREATE)``: ``If-None-Match: *``).
    Before the first create the store proves it once: the file system must
    report the capability, and of two creates of one probe key racing past the
    existence check, the store must refuse the second. With
    ``consistency="conditional"`` (the default) a failed proof raises
    :class:`ConditionalCreateUnavailable`; with ``"best_effort"`` it is reported
    once on stderr and a plain ``create(path, false)`` is used, so a double take
    is only found at the next renewal.
    """

    def __init__(self, jvm, fs, root, consistency: str = "conditional"):
        if consistency not in LEASE_CONSISTENCY:
            raise ValueError(f"lease consistency {consistency!r} is not one of {', '.join(LEASE_CONSISTENCY)}")
        self._jvm, self._fs, self._root, self.consistency = jvm, fs, root, consistency
        self.scheme = fs.getScheme()
        self._conditional: bool | None = None  # proven (True) or not (False) before the first create on S3A

    def _path(self, name: str):
        return self._jvm.org.apache.hadoop.fs.Path(self._root, name)

    def list_names(self, folder: str) -> list[str]:
        try:
            return [status.getPath().getName() for status in self._fs.listStatus(self._path(folder))]
        except Exception as err:  # noqa: BLE001 - py4j wraps the Java exception
            if "FileNotFoundException" in _java_names(err):
                return []
            raise LeaseStoreError(f"cannot list {self._path(folder)}: {_java_names(err)}") from err

    def read(self, name: str, limit: int) -> tuple[bytes, float | None] | None:
        path = self._path(name)
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                status = self._fs.getFileStatus(path)
                if not status.isFile():
                    raise LeaseStoreError(f"{path} is not a regular file")
                stream = self._fs.open(path)
                try:
                    data = bytes(stream.readNBytes(limit + 1))
                finally:
                    stream.close()
                return data, float(status.getModificationTime())
            except LeaseStoreError:
                raise
            except Exception as err:  # noqa: BLE001
                detail = _java_names(err)
                if "FileNotFoundException" in detail:
                    return None
                if attempt < _READ_ATTEMPTS and any(s in detail for s in _CHANGED_WHILE_READING):
                    continue  # S3A reads the ETag it listed (If-Match); the owner renewed in between
                raise LeaseStoreError(f"cannot read {path}: {detail}") from err
        raise AssertionError("unreachable")

    def _conditional_stream(self, path):
        return self._fs.createFile(path).overwrite(False).recursive().must(CONDITIONAL_CREATE, True).build()

    def _prove_conditional_create(self) -> str | None:
        """``None`` if this S3A store refuses a second create of one key; else what is missing.

        Two streams both pass S3A's existence check, the second closes first: an
        honoured ``If-None-Match: *`` makes the first one's close fail (HTTP 412).
        The probe key is a hidden temporary beside ``_leases/``, not in it: deleting the last object of a
        folder makes S3A write a folder marker, and ``_leases/`` must hold generations only.
        """
        root = self._jvm.org.apache.hadoop.fs.Path(self._root, LEASE_DIR)
        try:
            if not self._fs.hasPathCapability(root, CONDITIONAL_CREATE):
                return (f"its S3A connector reports no {CONDITIONAL_CREATE} capability (Hadoop older than 3.5, or "
                        f"{CONDITIONAL_CREATE_ENABLED}=false)")  # fmt: skip
        except Exception as err:  # noqa: BLE001
            return f"its S3A connector cannot say whether it has conditional create ({_java_names(err)[:300]})"
        probe_name = f".lease-probe.{uuid.uuid4().hex}.tmp"
        probe = self._path(probe_name)
        try:
            try:
                first, second = self._conditional_stream(probe), self._conditional_stream(probe)
                for stream, body in ((second, b"second"), (first, b"first")):
                    stream.write(bytearray(body))
                second.close()
            except Exception as err:  # noqa: BLE001
                detail = _java_names(err)
                if any(s in detail for s in _NO_CONDITIONAL_CREATE):
                    return f"its S3A connector refused a conditional create ({detail[:300]})"
                raise LeaseStoreError(f"cannot probe conditional create at {probe}: {detail}") from err
            try:
                first.close()
            except Exception as err:  # noqa: BLE001
                detail = _java_names(err)
                if any(s in detail for s in _CREATE_REFUSED):
                    return None
                raise LeaseStoreError(f"cannot probe conditional create at {probe}: {detail}") from err
            return "the store accepted a second create of one key: it ignores If-None-Match: *"
        finally:
            RunnerLease._quietly(self.delete, probe_name)

    def _conditional_create(self) -> bool:
        """Whether creates go through the proven conditional create; refuses or warns (once) if unproven."""
        if self._conditional is None:
            missing = self._prove_conditional_create()
            if missing is not None and self.consistency == "conditional":
                raise ConditionalCreateUnavailable(conditional_create_refusal(str(self._root), missing))
            if missing is not None:
                print(f"checkpoint lease (lease_consistency=best_effort): {missing}; two takers are told apart at "
                      "renewal instead, and the loser stops", file=sys.stderr)  # fmt: skip
            self._conditional = missing is None
        return self._conditional

    def _write(self, name: str, data: bytes, overwrite: bool) -> None:
        path = self._path(name)
        if self.scheme == "s3a" and not overwrite and self._conditional_create():
            stream = self._conditional_stream(path)
        else:
            stream = self._fs.create(path, overwrite)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()  # S3A checks the condition here

    def create_exclusive(self, name: str, data: bytes) -> bool:
        try:
            self._write(name, data, overwrite=False)
            return True
        except ConditionalCreateUnavailable:
            raise
        except Exception as err:  # noqa: BLE001
            detail = _java_names(err)
            if any(s in detail for s in _CREATE_REFUSED):
                return False
            raise LeaseStoreError(f"cannot create {self._path(name)}: {detail}") from err

    def overwrite(self, name: str, data: bytes) -> None:
        try:
            self._write(name, data, overwrite=True)
        except Exception as err:  # noqa: BLE001
            raise LeaseStoreError(f"cannot write {self._path(name)}: {_java_names(err)}") from err

    def delete(self, name: str) -> None:
        try:
            self._fs.delete(self._path(name), False)
        except Exception as err:  # noqa: BLE001
            raise LeaseStoreError(f"cannot delete {self._path(name)}: {_java_names(err)}") from err


def open_store(spark, checkpoint: str, consistency: str = "conditional") -> LeaseStore:
    """The lease store for a checkpoint URI. ``file:`` goes to :class:`LocalLeaseStore`, because Hadoop's
    local ``create(overwrite=false)`` checks ``exists()`` and then opens: not atomic. ``consistency`` is
    the spec's ``lease_consistency`` (see :class:`HadoopLeaseStore`)."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(checkpoint)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.getScheme() == "file":
        return LocalLeaseStore(fs.makeQualified(root).toUri().getPath())
    return HadoopLeaseStore(jvm, fs, fs.makeQualified(root), consistency)
