"""The control key: the secret only Airflow and the stream runner hold, read from an Airflow connection.

Records beside a checkpoint that lead to an action (``_submission``, the lease, maintenance
requests, results and the hand-off) carry an HMAC under this key
(:mod:`airflow_spark_streaming.runner.control_auth`); anyone else who can write to the lake cannot
make one. The key is the *password* of a connection (``spark_streaming_control_default`` unless a
``control_conn_id`` says otherwise), is registered with the secrets masker as soon as it is read,
and reaches the runner only inside its private spec.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

from airflow_spark_streaming.exceptions import ControlKeyMissingError
from airflow_spark_streaming.runner.control_auth import ControlKey, ControlKeyError

DEFAULT_CONTROL_CONN_ID = "spark_streaming_control_default"
#: How to create the connection, named in every error about it.
CREATE_HINT = (
    "create it with the key in its password, for example: airflow connections add {conn_id} --conn-type generic "
    "--conn-password \"$(python -c 'import secrets; print(secrets.token_hex(32))')\" (or the environment variable "
    'AIRFLOW_CONN_{upper}=\'{{"conn_type": "generic", "password": "<random key>"}}\'), the same on every '
    "Airflow worker and triggerer"
)


class ControlKeyHook(BaseHook):
    """The control key from an Airflow connection's password.

    :param control_conn_id: the connection holding the key in its password (any connection type; ``generic``
        is enough). Default ``spark_streaming_control_default``.
    """

    conn_name_attr = "control_conn_id"
    default_conn_name = DEFAULT_CONTROL_CONN_ID
    conn_type = "generic"
    hook_name = "Spark Streaming control key"

    def __init__(self, control_conn_id: str | None = None) -> None:
        super().__init__()
        self.control_conn_id = control_conn_id or DEFAULT_CONTROL_CONN_ID

    def get_key(self, *, required: bool = True, purpose: str = "") -> ControlKey | None:
        """The key, registered with the secrets masker; ``None`` without the connection unless ``required``.

        :param required: raise :class:`ControlKeyMissingError` (naming the connection and how to
            create it) when the connection is missing; a weak key is refused either way.
        :param purpose: what needs the key, for the error message.
        """
        from airflow.sdk.exceptions import AirflowNotFoundException

        hint = CREATE_HINT.format(conn_id=self.control_conn_id, upper=self.control_conn_id.upper())
        try:
            connection = self.get_connection(self.control_conn_id)
        except AirflowNotFoundException:
            if not required:
                return None
            raise ControlKeyMissingError(
                f"{purpose or 'This task'} needs the control key, and connection {self.control_conn_id!r} does not "
                f"exist; {hint}."
            ) from None
        text = connection.password
        if text:
            from airflow.sdk.log import mask_secret

            mask_secret(text)
        try:
            return ControlKey.from_text(text, source=f"connection {self.control_conn_id!r}")
        except ControlKeyError as err:
            if not text and not required:
                return None
            raise ControlKeyMissingError(f"{err}; {hint}.") from None


def get_control_key(control_conn_id: str | None, *, required: bool, purpose: str = "") -> ControlKey | None:
    """:meth:`ControlKeyHook.get_key` for ``control_conn_id`` (the default connection when ``None``)."""
    return ControlKeyHook(control_conn_id).get_key(required=required, purpose=purpose)
