"""The house rules: the library never imports the application, and ``import tfsmooth`` gives the
public API quietly."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tfsmooth"
APPLICATION = ("tfsmooth.app", "tfsmooth.experiments", "tfsmooth.main")


def _library_modules():
  for path in sorted(PACKAGE.glob("*.py")):
    if path.stem not in ("main",):
      yield f"tfsmooth.{path.stem}".removesuffix(".__init__"), path


def _imported(path: pathlib.Path):
  """Every module ``path`` imports, at the top or inside a function."""
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _is_application(module: str) -> bool:
  return any(module == app or module.startswith(app + ".") for app in APPLICATION)


def test_the_library_imports_no_application_module():
  offending = {name: sorted(m for m in _imported(path) if _is_application(m))
               for name, path in _library_modules()}
  assert {name: found for name, found in offending.items() if found} == {}


def test_importing_the_library_loads_no_application_module():
  """The same rule at run time: every library module, and every public name, imported in a
  fresh interpreter leaves no ``tfsmooth.app`` module in ``sys.modules``."""
  modules = [name for name, _ in _library_modules() if name != "tfsmooth"]
  script = ("import importlib, sys, tfsmooth\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "for name in tfsmooth.__all__: getattr(tfsmooth, name)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tfsmooth.app', "
            "'tfsmooth.experiments'))))\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=PACKAGE.parent)
  assert result.stdout.strip() == "[]"


def test_import_tfsmooth_lists_the_public_api_and_prints_nothing():
  script = "import tfsmooth; print(tfsmooth.__all__); tfsmooth.SmoothGAN"
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd="/")
  assert result.stderr == ""
  names = ast.literal_eval(result.stdout.strip())
  assert {"SmoothGAN", "SNConv2D", "RKHSPenalty", "generator_learning_rate",
          "stability_constants", "get_provider", "frechet_distance"} <= set(names)


@pytest.mark.parametrize("name", __import__("tfsmooth").__all__)
def test_every_public_name_has_a_docstring(name):
  import tfsmooth  # pylint: disable=g-import-not-at-top
  value = getattr(tfsmooth, name)
  assert (value.__doc__ or "").strip(), f"tfsmooth.{name} has no docstring"


def test_an_unknown_name_is_an_attribute_error():
  import tfsmooth  # pylint: disable=g-import-not-at-top
  with pytest.raises(AttributeError, match="no attribute 'SmoothGan'"):
    tfsmooth.SmoothGan  # noqa: B018
