"""`pytest_test`: one Bazel py_test per pytest file, run by tools/bazel/pytest_main.py.

A new test file tests/test_foo.py needs, in tests/BUILD,

    pytest_test(
        name = "test_foo",
        deps = ["//tfsmooth:foo"],  # the tfsmooth modules it imports
    )
"""

def pytest_test(
        name,
        deps = [],
        srcs = [],
        data = [],
        markers = "not slow",
        size = "medium",
        tags = [],
        conftest = "//tests:conftest",
        **kwargs):
    """A py_test running pytest on `<name>.py`.

    Args:
      name: the test file's name without `.py`.
      deps: the py_library targets the file imports (directly, or in a subprocess it starts).
      srcs: other test files it imports (helpers shared between test files).
      data: files it reads at run time.
      markers: pytest `-m` expression; by default the slow tests are left out, as in `make test`.
        Override one run with `--test_arg=-m --test_arg=EXPR` (the last -m wins).
      size: Bazel test size (sets the default timeout: medium 300 s, large 900 s).
      tags: Bazel tags, e.g. "manual" for a target `bazel test //...` should skip.
      conftest: the py_library holding the conftest.py of the file's directory.
      **kwargs: passed to py_test (e.g. timeout, shard_count).
    """
    runner = "//tools/bazel:pytest_main.py"
    native.py_test(
        name = name,
        srcs = [runner, name + ".py"] + srcs,
        main = runner,
        # pytest's own rule: a directory without __init__.py is put on sys.path, so test files
        # import each other by module name; Bazel must not invent __init__.py files.
        legacy_create_init = False,
        # Shell-tokenized by Bazel: the quotes keep "not slow" one argument.
        args = ["-m", "'%s'" % markers, "$(rootpath %s.py)" % name],
        data = ["//:pytest.ini"] + data,
        deps = [conftest] + deps,
        size = size,
        tags = tags,
        python_version = "PY3",
        **kwargs
    )
