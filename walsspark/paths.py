"""Where a path lives: resolved as Spark resolves it, and whether the driver may touch it.

A path option is whatever ``spark.read`` / ``df.write`` accept: any Hadoop URI
(``file:``, ``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/``, ``viewfs://``) or
a path without a scheme, which Spark (Hadoop) resolves against the default file system
``fs.defaultFS``: the driver's disk only when that is ``file:///``, HDFS on a typical YARN
cluster, DBFS on Databricks (where ``/Volumes/...`` is a Unity Catalog volume).

This module is the one place that decides whether a path is *local to the driver*: a
``file:`` path, or a scheme-less one under a ``file:`` default file system, when the Spark
driver runs in this process (classic Spark) or in a Connect server that this process
started on the same machine. Only such paths are touched with :mod:`os` (fast checks
before Spark starts, staging directories renamed into place); every other path goes
through Spark's readers and writers (:mod:`walsspark.storage`), so it also works on Spark
Connect, where there is no JVM gateway.

The default file system is read from the settings Spark itself would use: ``--conf
spark.hadoop.fs.defaultFS=...``, ``spark-defaults.conf`` (``SPARK_CONF_DIR``), Hadoop's
``core-site.xml`` (``HADOOP_CONF_DIR``, ``YARN_CONF_DIR``), Databricks (``dbfs:/``), and
once a classic session runs, the session's own Hadoop configuration.
"""

from __future__ import annotations

import os
import posixpath
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

LOCAL_FS = "file:///"
DEFAULT_FS_KEY = "spark.hadoop.fs.defaultFS"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def scheme(path: str) -> str | None:
    """The URI scheme of ``path`` (lower case), or None for a plain path."""
    match = _SCHEME.match(path)
    # A one-letter "scheme" is a Windows drive letter, not a file system.
    if match is None or len(match.group(1)) == 1:
        return None
    return match.group(1).lower()


def join(path: str, *parts: str) -> str:
    """``path/part/...`` for any path or URI (never ``os.path.join``: URIs keep ``/``)."""
    pieces = [path.rstrip("/") or path, *[part.strip("/") for part in parts if part]]
    return "/".join(pieces) if len(pieces) > 1 else path


def split_uri(path: str) -> tuple[str, str]:
    """``(scheme://authority, path)`` of a Hadoop path: ``hdfs://nn/a`` -> ``("hdfs://nn",
    "/a")``, ``dbfs:/a`` -> ``("dbfs:", "/a")``, ``/a`` -> ``("", "/a")``. Unlike a URL
    parser it keeps ``#`` and ``?``, which are ordinary characters in Hadoop paths."""
    kind = scheme(path)
    if kind is None:
        return "", path
    rest = path[len(kind) + 1 :]
    if rest.startswith("//"):
        slash = rest.find("/", 2)
        authority = rest if slash < 0 else rest[:slash]
        return f"{kind}:{authority}", "" if slash < 0 else rest[slash:]
    return f"{kind}:", rest


def uri_path(path: str) -> str:
    """The path component of a URI (``hdfs://nn/a/b`` -> ``/a/b``), or the plain path."""
    return split_uri(path)[1]


def normalized(path: str) -> str:
    """A path component as Hadoop qualifies it: ``./a//b/`` -> ``a/b``, ``""`` -> ``""``."""
    if not path:
        return ""
    clean = posixpath.normpath(path)
    return "" if clean == "." else clean


@dataclass(frozen=True)
class PathResolver:
    """Resolves path options the way Spark will, and tells which the driver can touch.

    Attributes
    ----------
    default_fs : str, optional
        Hadoop's ``fs.defaultFS``: where scheme-less paths go; None while it is unknown
        (under spark-submit, before the session is asked), so that only Spark judges them.
    driver_is_here : bool
        The Spark driver shares this process's disk and working directory (classic Spark,
        or a Connect server this process started, ``SPARK_REMOTE=local[...]``).
    """

    default_fs: str | None = LOCAL_FS
    driver_is_here: bool = True

    def local_path(self, path: str) -> str | None:
        """The driver's own (absolute) file path for ``path``, or None if only Spark can
        reach it."""
        if not self.driver_is_here or not path:
            return None
        kind = scheme(path)
        if kind == "file":
            authority, rest = split_uri(path)
            if authority not in ("file:", "file://", "file://localhost") or not rest.startswith(
                "/"
            ):
                return None  # another host, or a relative file: URI Hadoop would not take
            return os.path.abspath(rest)
        if kind is not None or self.default_fs is None or scheme(self.default_fs) != "file":
            return None
        return os.path.abspath(path)

    def spark_path(self, path: str, *parts: str) -> str:
        """The path to hand to Spark: driver-local paths as absolute ``file://`` URIs (so the
        working directory is the driver's), everything else as given, for Spark to
        resolve against its default file system."""
        joined = join(path, *parts)
        local = self.local_path(joined)
        return "file://" + local if local is not None else joined

    def describe(self, path: str) -> str:
        """``path`` as the user should read it in a log line: local paths absolute,
        scheme-less absolute paths prefixed with the default file system."""
        local = self.local_path(path)
        if local is not None:
            return local
        if scheme(path) is None and path.startswith("/") and self.default_fs:
            return self.default_fs.rstrip("/") + path
        return path

    def same_or_nested(self, first: str, second: str) -> bool:
        """True when one path is the other or lies inside it."""
        a, b = (self.describe(p).rstrip("/") + "/" for p in (first, second))
        local_a, local_b = self.local_path(first), self.local_path(second)
        if local_a is not None and local_b is not None:
            a, b = (os.path.realpath(p).rstrip("/") + "/" for p in (local_a, local_b))
        return a.startswith(b) or b.startswith(a)


def resolver_from_settings(
    settings: Mapping[str, str], remote: str | None = None, env: Mapping[str, str] | None = None
) -> PathResolver:
    """The resolver before Spark starts, from the settings Spark will start with.

    Under spark-submit (or on Databricks) the JVM already runs with settings this process
    cannot see (spark-submit's ``--conf`` and properties file), so the default file system
    stays unknown until the session is asked: scheme-less paths are then judged by Spark.

    Parameters
    ----------
    settings : mapping
        Spark settings (``spark-defaults.conf`` merged with ``--conf``).
    remote : str, optional
        The Spark Connect URL, if the session will be a Connect one.
    env : mapping, optional
        Environment (default ``os.environ``).
    """
    env = os.environ if env is None else env
    if remote is None and ("PYSPARK_GATEWAY_PORT" in env or "DATABRICKS_RUNTIME_VERSION" in env):
        return PathResolver(None)
    return PathResolver(
        default_fs_from(settings, env), driver_is_here=connect_server_is_here(remote)
    )


def default_fs_from(settings: Mapping[str, str], env: Mapping[str, str] | None = None) -> str:
    """``fs.defaultFS`` as Spark will see it: a ``spark.hadoop.`` setting, else Hadoop's
    ``core-site.xml``, else Databricks' ``dbfs:/``, else Hadoop's default ``file:///``."""
    env = os.environ if env is None else env
    if settings.get(DEFAULT_FS_KEY):
        return settings[DEFAULT_FS_KEY]
    for variable in ("HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_CONF_DIR"):
        directory = env.get(variable)
        if directory:
            value = _core_site_default_fs(os.path.join(directory, "core-site.xml"))
            if value:
                return value
    if env.get("DATABRICKS_RUNTIME_VERSION"):
        return "dbfs:/"
    return LOCAL_FS


def _core_site_default_fs(path: str) -> str | None:
    """``fs.defaultFS`` (or its old name ``fs.default.name``) from a core-site.xml."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    values = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name and value:
            values[name.strip()] = value.strip()
    return values.get("fs.defaultFS") or values.get("fs.default.name")


def connect_server_is_here(remote: str | None) -> bool:
    """A Connect server shares our disk and working directory only when we start it
    (``local[...]``); a server at ``sc://...`` may run anywhere. No URL: classic Spark."""
    if remote is None:
        return True
    return remote == "local" or remote.startswith("local[")
