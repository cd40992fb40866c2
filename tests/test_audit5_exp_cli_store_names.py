"""``cfgcore experiment`` names the store it read: ``list`` says when it holds no test
(an empty output read as a wrong store or a failure), and an unknown test's error names
a Redis store without its password (it printed the URL as given)."""

from __future__ import annotations

import redis

from cfgcore.cli import main


def test_list_says_there_are_no_tests(tmp_path, capsys):
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags: {}\n")
    assert main(["experiment", "list", "--flags", str(flags)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"no A/B tests in {flags}" in err


def test_an_unknown_test_names_the_store_without_its_password(redis_server, capsys):
    admin = redis.Redis(port=redis_server.port)
    admin.config_set("requirepass", "hunter2-s3cret")
    try:
        url = f"redis://:hunter2-s3cret@127.0.0.1:{redis_server.port}/0?namespace=cli&cache=off"
        assert main(["experiment", "report", "nosuch", "--store", url]) != 0
        err = capsys.readouterr().err
        assert "nosuch: no such A/B test in redis://" in err
        assert "hunter2" not in err and "***" in err
        assert main(["experiment", "list", "--store", url]) == 0
        err = capsys.readouterr().err
        assert "no A/B tests in redis://" in err and "hunter2" not in err
    finally:
        redis.Redis(port=redis_server.port, password="hunter2-s3cret").config_set("requirepass", "")
