"""Repository rule `venv_python`: a Python toolchain on the project's virtualenv.

`py_runtime(interpreter_path = ...)` needs an absolute path, and the checkout can be anywhere,
so this rule finds `<workspace>/.venv/bin/python3` (made by `make setup`) when Bazel fetches the
repository and writes a BUILD file with the runtime and its toolchain. WORKSPACE registers it:

    venv_python(name = "venv_python")
    register_toolchains("@venv_python//:toolchain")

Third-party packages (TensorFlow, Keras, pytest, ...) are not Bazel targets: they come from the
virtualenv's site-packages, pinned by requirements.txt. `bazel sync --configure` (or
`bazel clean --expunge`) re-runs the rule, e.g. after moving the checkout.
"""

_BUILD = """\
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "python3",
    interpreter_path = "{python}",
    python_version = "PY3",
    # The launcher stub uses only the standard library; it then runs the interpreter above.
    stub_shebang = "#!/usr/bin/env python3",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":python3",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _venv_python_impl(rctx):
    workspace = rctx.path(Label("@//:WORKSPACE")).dirname
    python = workspace.get_child(".venv").get_child("bin").get_child("python3")
    if not python.exists:
        fail("tfsmooth: no virtualenv at %s; run `make setup` first (see docs/bazel.md)." % python)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", _BUILD.format(python = str(python)))

venv_python = repository_rule(
    implementation = _venv_python_impl,
    # Re-checked on every fetch: a failure (no .venv yet) is retried after `make setup`.
    local = True,
)
