"""``./dev`` on a fresh machine: its preflight passes with no caches yet, and every failure is one clear line.

A first run has no uv cache, no ``~/.cache``, ``~/.m2`` or Ivy cache and no ``.venv``: each
check must look at the folder they will be created in. A failed check prints one ``dev:``
line that names the problem and its fix; nothing ends the script without a word (an earlier
``./dev`` ended silently under ``pipefail`` when ``df`` was asked about uv's missing cache).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DEV = REPO_ROOT / "dev"
# The safety net's wording: a first-run condition must have a message of its own, not this one.
UNEXPECTED = "failed with exit status"
# What a machine may lack: then preflight fails, saying so. The fresh folders themselves never fail it.
MACHINE_LACKS = re.compile(r"Python 3\.11|Java|JAVA_HOME|'mvn'|MB free")


@pytest.fixture
def fresh(tmp_path) -> dict[str, str]:
    """The environment of a first run: an empty home, none of the caches or the venv created yet."""
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ)
    for name in ("KAFKA_LOCAL_PORT", "S3_LOCAL_PORT", "AIRFLOW_SPARK_STREAMING_CACHE", "BASH_ENV"):
        env.pop(name, None)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        UV_CACHE_DIR=str(home / ".cache" / "uv"),
        AIRFLOW_SPARK_STREAMING_VENV=str(tmp_path / "checkout" / ".venv"),
    )
    return env


def _dev(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEV), *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def _one_clear_line(done: subprocess.CompletedProcess) -> str:
    """The failure's only line: on stderr, from dev, from a named check rather than the safety net."""
    lines = done.stderr.splitlines()
    assert done.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("dev: "), f"stdout={done.stdout!r} stderr={done.stderr!r}"
    return lines[0]


def _fake_java(tmp_path: Path, script: str) -> str:
    """A JAVA_HOME whose bin/java runs ``script`` (sh)."""
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text(f"#!/bin/sh\n{script}\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return str(java_home)


def test_preflight_on_a_fresh_machine_passes_or_says_why_in_one_line(fresh):
    for folder in ("XDG_CACHE_HOME", "UV_CACHE_DIR", "AIRFLOW_SPARK_STREAMING_VENV"):
        assert not Path(fresh[folder]).exists()
    done = _dev(fresh, "preflight")
    if done.returncode != 0:  # a machine without a JDK, Maven or disk space: said so, in one line
        line = _one_clear_line(done)
        assert MACHINE_LACKS.search(line) and UNEXPECTED not in line, line
        return
    assert done.stderr == ""
    assert done.stdout.splitlines() == [done.stdout.strip()] and done.stdout.startswith("dev: preflight ok")
    # Preflight installs nothing and creates none of the folders it checked.
    assert list(Path(fresh["HOME"]).iterdir()) == []
    assert not Path(fresh["AIRFLOW_SPARK_STREAMING_VENV"]).exists()


def test_java_home_pointing_nowhere_is_named(fresh, tmp_path):
    fresh["JAVA_HOME"] = str(tmp_path / "no-jdk")
    line = _one_clear_line(_dev(fresh, "preflight"))
    assert f"JAVA_HOME is '{tmp_path / 'no-jdk'}', which does not exist" in line and "unset it" in line


def test_java_home_without_bin_java_is_named(fresh, tmp_path):
    (tmp_path / "jdk-bin-only").mkdir()
    fresh["JAVA_HOME"] = str(tmp_path / "jdk-bin-only")
    assert "which has no bin/java" in _one_clear_line(_dev(fresh, "preflight"))


def test_a_java_that_fails_reports_what_it_said(fresh, tmp_path):
    # A JDK stub exits 1 here; under pipefail that once ended ./dev without a word.
    fresh["JAVA_HOME"] = _fake_java(tmp_path, "echo 'Unable to locate a Java Runtime.' >&2; exit 1")
    line = _one_clear_line(_dev(fresh, "preflight"))
    assert "reported no Java version" in line and "Unable to locate a Java Runtime." in line


@pytest.mark.parametrize(("version", "major"), [('"11.0.2" 2019-01-15', 11), ('"1.8.0_392"', 8)])
def test_an_old_java_is_named_with_its_version(fresh, tmp_path, version, major):
    fresh["JAVA_HOME"] = _fake_java(tmp_path, f"echo 'openjdk version {version}' >&2")
    line = _one_clear_line(_dev(fresh, "preflight"))
    assert f"Java {major} found at" in line and "needs Java 17 or newer" in line


def test_a_file_where_a_cache_folder_goes_is_named(fresh):
    m2 = Path(fresh["HOME"]) / ".m2"
    m2.write_text("not a folder")
    line = _one_clear_line(_dev(fresh, "preflight"))
    assert f"{m2} is a file" in line and "Maven's repository" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_cache_parent_is_named(fresh):
    home = Path(fresh["HOME"])
    home.chmod(0o500)
    try:
        line = _one_clear_line(_dev(fresh, "preflight"))
    finally:
        home.chmod(0o700)
    assert f"{home} is not writable" in line


def test_a_port_that_is_not_a_number_is_named(fresh):
    fresh["KAFKA_LOCAL_PORT"] = "90 92"
    assert "KAFKA_LOCAL_PORT is '90 92', which is not a port" in _one_clear_line(_dev(fresh, "preflight"))


def test_any_other_failure_names_the_command_instead_of_ending_silently(fresh):
    # Sourced, dev only defines its functions and its error trap; a failing command is then named.
    done = subprocess.run(["bash", "-c", f'source "{DEV}"; DEV_COMMAND=demo; false; echo not reached'], env=fresh,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    line = _one_clear_line(done)
    assert "'false' failed with exit status 1" in line and "./dev demo" in line
    assert "not reached" not in done.stdout


def _tools(tmp_path: Path, **scripts: str) -> str:
    """A PATH of fake commands (``name=script``) and ``dirname`` (dev's first line), without chromium."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    for name, script in scripts.items():
        tool = bin_dir / name.replace("_", "-")
        tool.write_text(f"#!/bin/sh\n{script}\n")
        tool.chmod(0o755)
    return str(bin_dir)


def _ensure_browser(env: dict[str, str]) -> subprocess.CompletedProcess:
    # sourced, dev only defines its functions
    return subprocess.run(["/bin/bash", "-c", f"source {DEV} && ensure_browser"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_a_missing_chromium_is_installed_from_debians_packages_as_root(fresh, tmp_path):
    log = tmp_path / "apt.log"
    fresh["PATH"] = _tools(tmp_path, id="echo 0", apt_get=f'echo "$@" >> {log}; /bin/touch {tmp_path}/fakebin/chromium')
    done = _ensure_browser(fresh)
    assert done.returncode == 0, done.stderr
    assert "install -y -q chromium" in log.read_text()
    assert done.stdout.strip() == "dev: installing Debian's chromium for the browser test ..."


def test_without_root_or_sudo_a_missing_chromium_is_one_clear_line(fresh, tmp_path):
    fresh["PATH"] = _tools(tmp_path, id="echo 1000", apt_get="exit 1")
    done = _ensure_browser(fresh)
    assert done.returncode == 0  # the other tests still run
    (line,) = done.stderr.splitlines()
    assert line.startswith("dev: no chromium for the browser test") and "apt-get install chromium" in line
