"""Which paths are the driver's own, how settings reach Spark, and errors before Spark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_assertions import assert_one_error_line

from walsspark.cli import build_parser, main, run, spark_setup
from walsspark.errors import InputError
from walsspark.paths import (
    PathResolver,
    default_fs_from,
    join,
    resolver_from_settings,
    scheme,
    split_uri,
    uri_path,
)
from walsspark.session import local_cores, new_session_defaults, parse_conf, spark_defaults
from walsspark.storage import Storage, relative_names

LOCAL = PathResolver()
HDFS = PathResolver(default_fs="hdfs://nn:8020")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/data/x", None),
        ("data/x", None),
        ("file:/data/x", "file"),
        ("file:///data/x", "file"),
        ("hdfs://nn/x", "hdfs"),
        ("s3a://bucket/key", "s3a"),
        ("dbfs:/x", "dbfs"),
        ("viewfs://t/data", "viewfs"),
        ("C:/data", None),  # a drive letter, not a scheme
    ],
)
def test_scheme(path, expected):
    assert scheme(path) == expected


def test_local_paths_follow_the_default_file_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert LOCAL.local_path("out/model") == str(tmp_path / "out" / "model")
    assert LOCAL.local_path("/abs/model") == "/abs/model"
    assert LOCAL.local_path("file:///abs/model") == "/abs/model"
    assert LOCAL.local_path("file:/abs/model") == "/abs/model"
    assert LOCAL.local_path("file://otherhost/abs") is None
    for remote in ("hdfs://nn/x", "s3a://b/k", "dbfs:/x", "viewfs://t/data", "abfss://c@a/x"):
        assert LOCAL.local_path(remote) is None
    # With HDFS as the default file system a scheme-less path is HDFS's, as Spark sees it.
    assert HDFS.local_path("/user/me/model") is None
    assert HDFS.local_path("model") is None
    assert HDFS.local_path("file:///tmp/model") == "/tmp/model"
    assert HDFS.describe("/user/me/model") == "hdfs://nn:8020/user/me/model"
    assert HDFS.spark_path("/user/me/model", "metadata") == "/user/me/model/metadata"
    assert LOCAL.spark_path("/abs/model", "metadata") == "file:///abs/model/metadata"
    # A Connect server elsewhere shares nothing with this process.
    away = PathResolver(driver_is_here=False)
    assert away.local_path("/abs/model") is None
    assert away.local_path("file:///abs/model") is None


def test_join_keeps_uris():
    assert join("hdfs://nn/a/", "b") == "hdfs://nn/a/b"
    assert join("dbfs:/a", "b", "c") == "dbfs:/a/b/c"
    assert join("/a") == "/a"


def test_same_or_nested():
    assert LOCAL.same_or_nested("/m/recs", "/m")
    assert LOCAL.same_or_nested("/m", "/m/")
    assert not LOCAL.same_or_nested("/m-recs", "/m")
    assert HDFS.same_or_nested("hdfs://nn:8020/m/x", "/m")


def test_default_file_system_as_spark_finds_it(tmp_path):
    assert default_fs_from({}, {}) == "file:///"
    assert default_fs_from({"spark.hadoop.fs.defaultFS": "hdfs://a"}, {}) == "hdfs://a"
    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>fs.defaultFS</name>"
        "<value>hdfs://cluster:8020</value></property></configuration>"
    )
    env = {"HADOOP_CONF_DIR": str(tmp_path)}
    assert default_fs_from({}, env) == "hdfs://cluster:8020"
    # A spark.hadoop. setting wins over core-site.xml, as in Spark.
    assert default_fs_from({"spark.hadoop.fs.defaultFS": "viewfs://t/"}, env) == "viewfs://t/"
    assert default_fs_from({}, {"DATABRICKS_RUNTIME_VERSION": "16.3"}) == "dbfs:/"
    assert not resolver_from_settings({}, "sc://host:15002", {}).driver_is_here
    assert resolver_from_settings({}, "local[2]", {}).driver_is_here


def test_spark_defaults_and_conf_options(tmp_path):
    (tmp_path / "spark-defaults.conf").write_text(
        "# comment\nspark.executor.memory   2g\nspark.hadoop.fs.defaultFS=viewfs://t/\n\n"
    )
    assert spark_defaults({"SPARK_CONF_DIR": str(tmp_path)}) == {
        "spark.executor.memory": "2g",
        "spark.hadoop.fs.defaultFS": "viewfs://t/",
    }
    assert spark_defaults({}) == {}
    assert parse_conf(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_conf(["novalue"])


def test_conf_before_and_after_the_subcommand():
    args = build_parser().parse_args(
        ["--conf", "a=1", "recommend", "--model", "m", "--conf", "b=2", "--conf", "a=3"]
    )
    assert spark_setup(args, None).settings == {"a": "3", "b": "2"}
    args = build_parser().parse_args(["train", "--conf", "c=4", "--input", "x", "--output", "y"])
    assert spark_setup(args, None).settings == {"c": "4"}


def test_bad_conf_is_one_line(capsys):
    status = main(["recommend", "--model", "m", "--conf", "novalue"])
    assert_one_error_line(status, capsys.readouterr(), ("--conf", "KEY=VALUE", "novalue"))


def test_new_session_defaults_leave_the_users_settings_alone():
    defaults = new_session_defaults("local[3]", {})
    assert defaults["spark.sql.shuffle.partitions"] == "3"
    assert "log4j2.properties" in defaults["spark.driver.extraJavaOptions"]
    mine = {"spark.driver.extraJavaOptions": "-Dmine=1"}
    assert "spark.driver.extraJavaOptions" not in new_session_defaults("local[2]", mine)
    assert "spark.sql.shuffle.partitions" not in new_session_defaults("spark://h:7077", {})
    assert (local_cores("local"), local_cores("local[4]"), local_cores("local[2,3]")) == (1, 4, 2)
    assert local_cores("local[*]") == (os.cpu_count() or 1)


def test_storage_lists_visible_files_and_needs_a_session_for_the_rest(tmp_path):
    (tmp_path / "out" / "sub").mkdir(parents=True)
    for name in ("out/part-0", "out/_SUCCESS", "out/.part-0.crc", "out/sub/part-1"):
        (tmp_path / name).write_text("x")
    storage = Storage(LOCAL)
    assert storage.files(str(tmp_path / "out")) == ["part-0", "sub/part-1"]
    assert storage.files(str(tmp_path / "out" / "part-0")) == [""]
    assert storage.files(str(tmp_path / "none")) is None
    with pytest.raises(LookupError):
        Storage(HDFS).files("/user/me/x")
    assert Storage(HDFS).exists("/user/me/x") is None
    Storage(HDFS).check_output("/user/me/x", overwrite=False)  # checked once Spark runs


def test_storage_lists_through_spark(spark, viewfs_root):
    root = Path(viewfs_root) / "listing"
    (root / "t").mkdir(parents=True)
    (root / "t" / "part-00000.txt").write_text("x")
    (root / "t" / "_SUCCESS").write_text("")
    storage = Storage(LOCAL, spark)
    assert storage.files("viewfs://wals/data/listing") == ["t/part-00000.txt"]
    assert storage.files("viewfs://wals/data/listing/t/part-00000.txt") == [""]
    assert storage.files("viewfs://wals/data/nothing") is None
    assert storage.read_text("viewfs://wals/data/listing/t") == "x"
    with pytest.raises(InputError, match="not empty"):
        storage.check_output("viewfs://wals/data/listing", overwrite=False)


def run_without_java(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    """The console script with no Java anywhere: it can report only what needs no Spark."""
    env = dict(
        os.environ, JAVA_HOME=str(tmp_path / "no-java"), PATH=os.path.dirname(sys.executable)
    )
    for name in ("SPARK_REMOTE", "PYSPARK_GATEWAY_PORT", "SPARK_CONF_DIR"):
        env.pop(name, None)
    code = "import sys; from walsspark.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
        check=False,
    )


def test_errors_that_need_no_spark_come_before_spark_starts(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    cases = {
        ("train", "--input", "missing.csv", "--output", "m"): "input not found",
        ("train", "--input", "r.csv", "--output", "out"): "not empty",
        ("recommend", "--model", "nowhere"): "model directory not found",
        ("recommend", "--model", "model"): "not a walsspark model",
        ("evaluate", "--model", "nowhere", "--test", "r.csv"): "model directory not found",
        ("project", "--model", "nowhere", "--input", "r.csv", "--output", "p"): "not found",
        ("split", "--input", "missing.csv", "--output", "s"): "input not found",
    }
    for argv, words in cases.items():
        completed = run_without_java(tmp_path, *argv)
        assert completed.returncode == 2, (argv, completed.stderr)
        assert completed.stderr.splitlines() == [completed.stderr.strip()], completed.stderr
        assert words in completed.stderr, (argv, completed.stderr)
    # A valid command does reach Spark's start, and stops at the missing Java.
    completed = run_without_java(tmp_path, "train", "--input", "r.csv", "--output", "m2")
    assert completed.returncode == 2 and "Java" in completed.stderr


@pytest.mark.parametrize(
    ("root", "files", "expected"),
    [
        ("/data/m", ["/data/m/metadata/part-0", "/data/m/user_factors/part-1"],
         ["metadata/part-0", "user_factors/part-1"]),
        ("/data/m", ["/data/m"], [""]),  # the path is a file
        ("/data/m/", ["/data/m/part-0"], ["part-0"]),
        # Relative paths are qualified against the file system's working directory.
        ("m", ["/user/me/m/part-0", "/user/me/m/t/part-1"], ["part-0", "t/part-1"]),
        ("./m", ["/user/me/m/part-0"], ["part-0"]),
        ("a//b", ["/user/me/a/b/part-0"], ["part-0"]),
        ("model", ["/user/model/model/metadata/part-0", "/user/model/model/items/part-1"],
         ["items/part-1", "metadata/part-0"]),
        ("", ["/a/part-0", "/b/c"], ["a/part-0", "b/c"]),  # a bucket's root
        ("/", ["/a/part-0"], ["a/part-0"]),
        ("/d", ["/d/a#1.csv", "/d/b?.csv"], ["a#1.csv", "b?.csv"]),
    ],
)  # fmt: skip
def test_relative_names_of_a_spark_listing(root, files, expected):
    assert relative_names(root, files) == expected


def test_uris_keep_hadoop_characters():
    assert split_uri("hdfs://nn:8020/a/b") == ("hdfs://nn:8020", "/a/b")
    assert split_uri("s3a://bucket") == ("s3a://bucket", "")
    assert split_uri("dbfs:/a") == ("dbfs:", "/a")
    assert uri_path("hdfs://nn/d/a#1.csv") == "/d/a#1.csv"
    assert LOCAL.local_path("file:///tmp/a#b") == "/tmp/a#b"
    assert LOCAL.local_path("file:rel/x") is None  # Hadoop takes no relative file: URI


def test_under_spark_submit_the_default_file_system_waits_for_the_session():
    # spark-submit's --conf and properties file are the JVM's: a scheme-less path is for
    # Spark to judge, not a local one to check before the session is asked.
    resolver = resolver_from_settings({}, None, {"PYSPARK_GATEWAY_PORT": "1234"})
    assert resolver.local_path("/data/ratings") is None
    assert resolver.local_path("file:///data/ratings") == "/data/ratings"


def test_hidden_entries_are_never_overwritten(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    args = ["train", "--input", str(tmp_path / "r.csv"), "--output", str(repo)]
    assert_one_error_line(main(args), capsys.readouterr(), ("not empty", "repo"))
    status = main([*args, "--overwrite"])
    assert_one_error_line(status, capsys.readouterr(), ("refusing to overwrite", ".git"))
    assert (repo / ".git").is_dir()


def test_overwrite_takes_only_what_walsspark_writes(tmp_path, capsys):
    # A directory of Spark tables that are not walsspark's outputs (here: the user's own
    # ratings table inside the directory named as output) is refused.
    data = tmp_path / "data"
    (data / "ratings").mkdir(parents=True)
    (data / "ratings" / "part-00000.parquet").write_text("x")
    args = ["split", "--input", str(tmp_path / "r.csv"), "--output", str(data), "--overwrite"]
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    assert_one_error_line(main(args), capsys.readouterr(), ("refusing to overwrite",))
    assert (data / "ratings" / "part-00000.parquet").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--input", "d", "--output", "d/model"], ("overlaps the input", "d")),
        (["train", "--input", "r.csv", "--output", "m", "--recommend-k", "2",
          "--recommendations", "m/recs"], ("overlaps the model", "m")),
        (["split", "--input", "d", "--output", "d"], ("overlaps the input",)),
        (["project", "--model", "m0", "--input", "r.csv", "--output", "m0/p"],
         ("overlaps the model directory",)),
        (["evaluate", "--model", "m0", "--test", "r.csv", "--output", "m0"],
         ("overlaps the model directory",)),
        (["recommend", "--model", "m0", "--ids", "ids.txt", "--output", "ids.txt/x"],
         ("overlaps the ids file",)),
    ],
)  # fmt: skip
def test_outputs_never_overlap_what_the_run_reads(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "r.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    (tmp_path / "r.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    (tmp_path / "ids.txt").write_text("1\n")
    write_metadata_only(tmp_path / "m0")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert_one_error_line(main(argv), capsys.readouterr(), words)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def write_metadata_only(model: Path) -> None:
    """A model directory complete enough for the checks before Spark starts."""
    for name in ("metadata", "user_factors", "item_factors"):
        (model / name).mkdir(parents=True)
        (model / name / "part-00000").write_text(
            '{"format": "walsspark-model", "format_version": 2}' if name == "metadata" else ""
        )


def test_a_file_output_is_staged_on_the_local_disk_whatever_the_default(spark, tmp_path):
    # With another default file system, a file: output is still written (and staged) on
    # the driver's disk: the staging directory must not go to the default file system.
    storage = Storage(PathResolver(default_fs="viewfs://wals/"), spark)
    out = tmp_path / "out"

    def write(target: str, mode: str) -> None:
        spark.createDataFrame([("x",)], "value string").write.mode(mode).text(target)

    storage.write_output(f"file://{out}", False, [("", write)])
    assert [p.name for p in out.glob("part-*")] and not list(tmp_path.glob("*.tmp-*"))


def test_console_script_fails_by_exiting(monkeypatch):
    # Databricks calls the entry point itself and ignores its return value.
    monkeypatch.setattr(sys, "argv", ["walsspark", "recommend", "--model", "/nowhere/m"])
    with pytest.raises(SystemExit) as stop:
        run()
    assert stop.value.code == 2
