"""The house rules: the library never imports the application, ``import tfsmooth`` gives the
public API quietly, and every public name documents its parameters (Google style)."""

import ast
import dataclasses
import inspect
import pathlib
import re
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


def _parameters(value) -> list[str]:
  """The parameters a public name is called with: a function's, or a class's constructor's
  (``__init__``: a dataclass's fields), without ``self``, ``*args`` and ``**kwargs``."""
  signature = inspect.signature(value.__init__ if inspect.isclass(value) else value)
  parameters = list(signature.parameters.values())[1 if inspect.isclass(value) else 0:]
  return [p.name for p in parameters
          if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]


def _section(doc: str, title: str) -> list[str] | None:
  """The lines of the Google-style section ``title:`` of a cleaned docstring (None if absent):
  every line after the title up to the next unindented one."""
  lines = doc.splitlines()
  if f"{title}:" not in lines:
    return None
  body = []
  for line in lines[lines.index(f"{title}:") + 1:]:
    if line and not line.startswith(" "):
      break
    body.append(line)
  return body


@pytest.mark.parametrize("name", __import__("tfsmooth").__all__)
def test_every_public_name_documents_its_parameters(name):
  """Google style: a function's parameters under ``Args:``, a dataclass's fields under
  ``Attributes:``, another class's constructor parameters under either (a Keras layer or model:
  ``Args:``); one entry per parameter; ``Returns:`` for a function annotated to return a
  value."""
  import tfsmooth  # pylint: disable=g-import-not-at-top
  value = getattr(tfsmooth, name)
  parameters = _parameters(value)
  doc = inspect.getdoc(value) or ""
  if dataclasses.is_dataclass(value):
    titles = ("Attributes",)
  elif inspect.isclass(value):
    titles = ("Args", "Attributes")
  else:
    titles = ("Args",)
  if parameters:
    sections = [_section(doc, title) for title in titles]
    assert any(s is not None for s in sections), (
        f"tfsmooth.{name} takes {', '.join(parameters)}; its docstring has no "
        f"{' or '.join(t + ':' for t in titles)} section")
    entries = {match.group(1) for section in sections if section for line in section
               if (match := re.match(r"  \**(\w+)( \(.*\))?:", line))}
    missing = [p for p in parameters if p not in entries]
    assert not missing, f"tfsmooth.{name}: no entry for {', '.join(missing)}"
  if not inspect.isclass(value):
    returns = inspect.signature(value).return_annotation
    if returns not in (inspect.Signature.empty, None):
      assert _section(doc, "Returns") is not None, f"tfsmooth.{name} has no Returns: section"


def test_an_unknown_name_is_an_attribute_error():
  import tfsmooth  # pylint: disable=g-import-not-at-top
  with pytest.raises(AttributeError, match="no attribute 'SmoothGan'"):
    tfsmooth.SmoothGan  # noqa: B018
