"""Entry point of every Bazel py_test (tools/bazel/defs.bzl): pytest on the given files.

The arguments come from the py_test (``-m <markers>`` and the test file) and then from
``--test_arg``. pytest finds tests/conftest.py and pytest.ini in the runfiles tree, which the
macro puts there. Bazel's test environment is honoured: HOME and TMPDIR (so pytest's tmp_path,
the test classifier cache of conftest.py, Keras' and Matplotlib's config) go to the test's own
``$TEST_TMPDIR``, the JUnit XML to ``$XML_OUTPUT_FILE``, and ``--test_filter=EXPR`` becomes
``-k EXPR``.
"""

import os
import sys

import pytest


def main(argv):
  """Runs pytest on ``argv`` with Bazel's test settings; returns pytest's exit code."""
  if os.environ.get("TEST_TMPDIR"):  # under `bazel test` (not `bazel run`)
    os.environ["HOME"] = os.environ["TMPDIR"] = os.environ["TEST_TMPDIR"]
  args = ["-q", "-p", "no:cacheprovider"]  # the runfiles tree is read-only
  if os.environ.get("XML_OUTPUT_FILE"):
    args.append("--junitxml=" + os.environ["XML_OUTPUT_FILE"])
  if os.environ.get("TESTBRIDGE_TEST_ONLY"):
    args += ["-k", os.environ["TESTBRIDGE_TEST_ONLY"]]
  return int(pytest.main(args + argv))


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
