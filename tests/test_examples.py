"""The README's "Your own networks" block is examples/own_networks.py, and it runs (at 4 steps)."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "own_networks.py"


def _readme_block() -> str:
  readme = (ROOT / "README.md").read_text()
  section = readme[readme.index("## Your own networks"):]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _example_body() -> str:
  text = EXAMPLE.read_text()
  return text[text.index('"""\n', 3) + 4:]  # after the module docstring


def test_the_readme_block_is_the_example():
  assert _readme_block() == _example_body()


def test_the_readme_block_runs(tmp_path):
  block = _readme_block()
  assert "STEPS = 300" in block and 'OUT = "out/own_networks"' in block
  script = tmp_path / "own_networks.py"
  script.write_text(block.replace("STEPS = 300", "STEPS = 4").replace(
      'OUT = "out/own_networks"', f'OUT = "{tmp_path / "out"}"'))
  result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "gamma*" in result.stdout
  # import tfsmooth first: TensorFlow's C++ start-up lines are filtered.
  assert "cuInit" not in result.stderr and "absl::InitializeLog" not in result.stderr
  assert list((tmp_path / "out" / "logs" / "train").glob("events.out.tfevents.*"))
  generator = tf.saved_model.load(str(tmp_path / "out" / "generator"))
  images = generator.serve(tf.zeros((3, 64))).numpy()
  assert images.shape == (3, 28, 28, 1) and np.all(np.abs(images) <= 1)
