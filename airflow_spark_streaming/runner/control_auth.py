"""Authenticated control records: what Airflow and the runner act on must carry a MAC only they can make.

The checkpoint folder doubles as a control channel (``_submission``, ``_leases/``,
``_maintenance/``), and anyone who can write to the lake can write files there. A record that
leads to an action (a kill, a log read, a VACUUM) is therefore signed with HMAC-SHA256 under a
key that only Airflow and the runner hold: Airflow reads it from a connection, and the runner
receives it in its private spec. A record without a valid MAC is refused and acted on by nobody.

The MAC covers the record's kind, an optional scope (the submission tag that binds a lease to
its submission) and the record's canonical JSON, so a record cannot be replayed as another kind
or under another submission. Standard library only: the Spark-side runner imports it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

AUTH_FIELD = "_auth"
ALGORITHM = "HMAC-SHA256"
PROTOCOL = "airflow-spark-streaming/control/1"
MIN_KEY_CHARS = 16
#: The spec key carrying the control key to the runner (private: redacted like every secret).
SPEC_KEY = "control_key"

#: Record kinds, each signed by one side and verified by the other.
SUBMISSION = "submission"  # Airflow -> Airflow (a later task: kill, driver log)
LEASE = "lease"  # runner -> Airflow (kill of a local driver by pid)
MAINTENANCE_REQUEST = "maintenance-request"  # Airflow -> runner (OPTIMIZE / VACUUM in the driver)
MAINTENANCE_RESULT = "maintenance-result"  # runner -> Airflow
HANDOFF = "handoff"  # runner -> Airflow (this driver takes maintenance requests)


class ControlRecordError(ValueError):
    """A control record is unsigned, mis-signed or of another kind: nobody acts on it."""


class ControlKeyError(ValueError):
    """The control key is missing or too weak to sign with."""


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes a MAC covers: sorted keys, no spaces, ASCII only, so both sides agree byte for byte."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


@dataclass(frozen=True, repr=False)
class ControlKey:
    """The shared secret. Its ``repr`` never shows it."""

    secret: bytes

    @classmethod
    def from_text(cls, text: str | None, *, source: str) -> ControlKey:
        if not text or len(text) < MIN_KEY_CHARS:
            raise ControlKeyError(
                f"the control key from {source} is {'missing' if not text else 'shorter than 16 characters'}; "
                "set it to a random secret of 32+ characters (for example: python -c "
                '"import secrets; print(secrets.token_hex(32))")'
            )
        return cls(text.encode("utf-8"))

    def __repr__(self) -> str:
        return "ControlKey(***)"

    def _mac(self, kind: str, scope: str, body: dict[str, Any]) -> str:
        message = f"{PROTOCOL}\n{kind}\n{scope}\n".encode() + canonical(body)
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def sign(self, kind: str, body: dict[str, Any], *, scope: str = "") -> dict[str, Any]:
        """``body`` with its MAC under ``_auth``; ``body`` must not carry ``_auth`` itself."""
        if AUTH_FIELD in body:
            raise ValueError(f"a control record to sign already carries {AUTH_FIELD!r}")
        return {**body, AUTH_FIELD: {"alg": ALGORITHM, "kind": kind, "mac": self._mac(kind, scope, body)}}

    def verify(self, kind: str, record: Any, *, scope: str = "", what: str = "a control record") -> dict[str, Any]:
        """The record's body if its MAC is valid for ``kind`` and ``scope``; :class:`ControlRecordError` if not."""
        if not isinstance(record, dict):
            raise ControlRecordError(f"{what} is not a JSON object; it was not written by the provider")
        auth = record.get(AUTH_FIELD)
        if not isinstance(auth, dict) or not isinstance(auth.get("mac"), str):
            raise ControlRecordError(f"{what} is unsigned; only records signed with the control key are acted on")
        if auth.get("alg") != ALGORITHM or auth.get("kind") != kind:
            raise ControlRecordError(f"{what} is signed as {auth.get('kind')!r}, not as a {kind} record")
        body = {k: v for k, v in record.items() if k != AUTH_FIELD}
        try:
            expected = self._mac(kind, scope, body)
        except (TypeError, ValueError):
            raise ControlRecordError(f"{what} holds values no signer writes") from None
        if not hmac.compare_digest(expected, auth["mac"]):
            raise ControlRecordError(
                f"{what} has a MAC that does not match: it was altered, or signed with another control key"
            )
        return body


def is_signed(record: Any) -> bool:
    """Whether ``record`` carries a MAC at all (verification is still needed before acting on it)."""
    return isinstance(record, dict) and isinstance(record.get(AUTH_FIELD), dict)


def key_from_spec(spec: dict[str, Any]) -> ControlKey | None:
    """The control key a runner received in its private spec (``SPEC_KEY``), or ``None`` when it got none.

    A runner without a key signs nothing and acts on no control record (no maintenance hand-off).
    """
    text = spec.get(SPEC_KEY)
    if text is None:
        return None
    return ControlKey.from_text(text if isinstance(text, str) else None, source="the runner's spec")


def process_start_ticks(pid: int | str = "self") -> int | None:
    """When process ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat`` field 22); ``None`` without it.

    Recorded in signed lease and submission records, so a kill by pid reaches only the process that
    wrote them: a pid the system reused since has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def expired(body: dict[str, Any], now_ms: float) -> bool:
    """A signed record's ``expires_at_ms`` has passed (or it carries none, which counts as expired)."""
    expires = body.get("expires_at_ms")
    return isinstance(expires, bool) or not isinstance(expires, int) or expires <= now_ms
