"""Authentication for the local Kafka broker: throwaway TLS material, SASL users and ACLs.

An authenticated broker listens on 127.0.0.1 with

* ``PLAINTEXT``: unauthenticated, for tests that don't need auth (its principal,
  ``User:ANONYMOUS``, is a super user, as is the broker's own controller traffic);
* ``SASL_PLAINTEXT``: SCRAM-SHA-512 / SCRAM-SHA-256 / PLAIN;
* ``SASL_SSL``: the same mechanisms over TLS;
* ``SSL``: mutual TLS; the client certificate's CN is the user name.

Authorization is Kafka's ``StandardAuthorizer``: ``admin`` is a super user, every
other user may use only topics and consumer groups whose name starts with
``<user>.``. The CA, broker and client certificates are generated with openssl
at start and thrown away with the broker's folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from airflow_spark_streaming.kafka.options import jaas_quote
from devstack.errors import LocalStackError

SUPER_USER = "admin"
TEST_USERS = ("alice", "bob")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
SASL_LISTENERS = ("SASL_PLAINTEXT", "SASL_SSL")


@dataclass(frozen=True)
class TlsFiles:
    """PEM files under ``<home>/tls`` (all 0600)."""

    ca_file: str  # the CA clients trust
    broker_keystore: str  # broker key (PKCS#8) + certificate
    other_ca_file: str  # an unrelated CA: trusting it must fail the handshake
    client_certificates: dict[str, str]  # user -> certificate file (CN=user, signed by the CA)
    client_keys: dict[str, str]  # user -> unencrypted PKCS#8 key file


def new_passwords() -> dict[str, str]:
    """Random passwords; alice's holds a quote and a backslash so JAAS quoting is exercised end to end."""
    passwords = {user: secrets.token_urlsafe(12) for user in (SUPER_USER, *TEST_USERS)}
    passwords["alice"] = f'al"ice\\{passwords["alice"]}'
    return passwords


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        raise LocalStackError(
            "The authenticated Kafka broker needs 'openssl' on the PATH to make its throwaway certificates; "
            "install openssl or start the broker without auth."
        )
    done = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LocalStackError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def _new_ca(tls: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "7",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=kafka-local {name}", cwd=tls,
    )  # fmt: skip


def _signed(tls: Path, name: str, subject: str, extensions: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subject, cwd=tls)  # fmt: skip
    (tls / f"{name}.ext").write_text(extensions + "\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "7", "-sha256", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=tls,
    )  # fmt: skip


def make_tls(home: Path) -> TlsFiles:
    """A CA, a broker certificate for 127.0.0.1/localhost and one client certificate per test user."""
    tls = home / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    os.chmod(tls, 0o700)
    _new_ca(tls, "ca")
    _new_ca(tls, "other-ca")
    _signed(tls, "broker", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    (tls / "broker-keystore.pem").write_text((tls / "broker.key").read_text() + (tls / "broker.crt").read_text())
    for user in TEST_USERS:
        _signed(tls, user, f"/CN={user}", "extendedKeyUsage=clientAuth")
    for path in tls.iterdir():
        os.chmod(path, 0o600)
    return TlsFiles(
        ca_file=str(tls / "ca.pem"),
        broker_keystore=str(tls / "broker-keystore.pem"),
        other_ca_file=str(tls / "other-ca.pem"),
        client_certificates={u: str(tls / f"{u}.crt") for u in TEST_USERS},
        client_keys={u: str(tls / f"{u}.key") for u in TEST_USERS},
    )


def server_settings(tls: TlsFiles, passwords: dict[str, str]) -> dict[str, str]:
    """Broker properties for SASL, TLS and ACLs (the listeners themselves are set by the caller)."""
    plain_users = " ".join(f"user_{u}={jaas_quote(p)}" for u, p in passwords.items())
    settings = {
        "sasl.enabled.mechanisms": ",".join(SASL_MECHANISMS),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": tls.broker_keystore,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": tls.ca_file,
        "listener.name.ssl.ssl.client.auth": "required",
        # mTLS principal: "CN=alice" -> "alice", so the same ACLs apply over every listener.
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{SUPER_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }
    for listener in SASL_LISTENERS:
        prefix = f"listener.name.{listener.lower()}"
        for mechanism in ("scram-sha-512", "scram-sha-256"):
            settings[f"{prefix}.{mechanism}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        settings[f"{prefix}.plain.sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        )
    return settings


def provision(bootstrap_servers: str, passwords: dict[str, str], timeout: float = 30) -> None:
    """Create every user's SCRAM credentials and the test users' prefix ACLs (over the PLAINTEXT listener)."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    for mechanism in (ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256):  # one per user and request
        upserts = [
            UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 8192), password.encode())
            for user, password in passwords.items()
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=timeout)
    acls = [
        AclBinding(
            kind,
            f"{user}.",
            ResourcePatternType.PREFIXED,
            f"User:{user}",
            "*",
            AclOperation.ALL,
            AclPermissionType.ALLOW,
        )  # fmt: skip
        for user in TEST_USERS
        for kind in (ResourceType.TOPIC, ResourceType.GROUP)
    ]
    for future in admin.create_acls(acls).values():
        future.result(timeout=timeout)
