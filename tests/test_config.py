"""One place for each setting: the configs, the flags made from them, and the resume rule."""

import dataclasses

import pytest

from tfsmooth import experiments
from tfsmooth import gan
from tfsmooth import losses
from tfsmooth.app import build
from tfsmooth.app import config
from tfsmooth.app import flags as tfs_flags
from tfsmooth.app import main


@pytest.fixture
def parsed():
  """``fn(*flags)``: parses ``tfsmooth FLAGS`` into the global flags, reset afterwards."""
  def parse(*args):
    tfs_flags.FLAGS(["tfsmooth", *args])
  yield parse
  tfs_flags.FLAGS.unparse_flags()


def test_the_flags_defaults_are_the_configs_defaults(parsed):
  parsed()
  assert tfs_flags.constants_config() == config.ConstantsConfig()
  assert tfs_flags.train_config() == config.TrainConfig()
  assert tfs_flags.eval_config() == config.EvalConfig()
  assert tfs_flags.sweep_config() == config.SweepConfig()


def test_every_config_field_has_exactly_its_flag(parsed):
  parsed("--mode=train", "--run_dir=/r", "--discriminator=mlp", "--hidden_units=3,4",
         "--generator=mlp",
         "--g_hidden_units=5", "--eval_samples=7", "--loss=wgan", "--seed=9", "--eta=0.5",
         "--dataset=mog_ring")
  train = tfs_flags.train_config()
  assert train.discriminator == config.DiscriminatorConfig(kind="mlp", hidden_units=(3, 4))
  assert (train.generator.kind, train.generator.hidden_units) == ("mlp", (5,))
  assert (train.evaluation.num_samples, train.gan.loss, train.gan.eta) == (7, "wgan", 0.5)
  assert train.seed == 9 and train.run_dir == "/r"
  assert config.settings(train) == {**config.settings(config.TrainConfig()), "run_dir": "/r",
                                    "discriminator": "mlp", "hidden_units": [3, 4],
                                    "generator": "mlp", "g_hidden_units": [5], "eval_samples": 7,
                                    "loss": "wgan", "seed": 9, "eta": 0.5, "dataset": "mog_ring"}
  assert set(config.flag_fields()) <= set(tfs_flags.FLAGS)


def test_make_spells_a_command_line_in_python():
  made = config.make(config.TrainConfig, discriminator="nk_mlp", hidden_units=(32,), eta=0.5)
  assert made.discriminator.kind == "nk_mlp" and made.discriminator.hidden_units == (32,)
  assert made.gan == config.GANConfig(eta=0.5)
  with pytest.raises(TypeError, match="has no setting etta"):
    config.make(config.TrainConfig, etta=0.5)


def test_every_name_list_has_its_one_implementation():
  assert set(main.JOBS) == set(config.MODES)
  assert set(build.DISCRIMINATOR_BUILDERS) == set(config.DISCRIMINATORS)
  assert set(build.GENERATOR_BUILDERS) == set(config.GENERATORS)
  assert {"indicator", "minimax", "non_saturating", "wgan", "mmd"} <= set(losses.LOSSES)
  assert {"rkhs", "gp", "none"} <= set(losses.penalty_names())
  assert config.UPDATES == gan.SmoothGAN.UPDATES  # the flag's choices are the model's
  defaults = config.make(config.SweepConfig, sweep_dir="/s", g_lr_ratio=1.0)
  for name in config.EXPERIMENTS:  # each experiment is its module's experiment()
    made = experiments.experiment(dataclasses.replace(defaults, experiment=name))
    assert made.members and callable(made.row) and callable(made.figures)


def test_trajectory_changes_name_only_the_settings_that_change_the_weights():
  base = config.make(config.TrainConfig, run_dir="/a", loss="wgan")
  recorded = config.settings(base)
  assert config.trajectory_changes(recorded, base) == []
  free = dataclasses.replace(base, run_dir="/b", steps=5000, log_every=1, sample_every=7,
                             checkpoint_every=3, keep_checkpoints=9, resume=True,
                             eval_at_end=False, eval_every=4, data_dir="/data",
                             evaluation=config.EvalConfig(repeats=5))
  assert config.trajectory_changes(recorded, free) == []
  moved = config.make(config.TrainConfig, run_dir="/a", loss="wgan", n_disc=3, alpha=2.0)
  assert config.trajectory_changes(recorded, moved) == ["--alpha: 1.0 -> 2.0",
                                                        "--n_disc: 2 -> 3"]
  # A setting the recorded run predates counts as its default; one tfsmooth dropped is ignored.
  older = {k: v for k, v in recorded.items() if k != "unroll_steps"} | {"dropped": 1}
  assert config.trajectory_changes(older, base) == []
  assert config.trajectory_changes(older, dataclasses.replace(
      base, gan=dataclasses.replace(base.gan, unroll_steps=2))) == ["--unroll_steps: 0 -> 2"]


def test_an_internal_bug_keeps_its_traceback_and_a_user_error_is_one_line(cli):
  bug = ("import sys; from tfsmooth.app import main\n"
         "def job(): raise KeyError('internal')\n"
         "main.JOBS['constants'] = job; sys.argv = ['tfsmooth']; main.run()\n")
  result = cli.script(bug, timeout=120)
  assert result.returncode == 1
  assert "Traceback (most recent call last)" in result.stderr and "KeyError: 'internal'" in \
      result.stderr and "tfsmooth: error" not in result.stderr
  expected = ("import sys; from tfsmooth.app import main; from tfsmooth.errors import UserError\n"
              "def job(): raise UserError('--x=1: bad')\n"
              "main.JOBS['constants'] = job; sys.argv = ['tfsmooth']; main.run()\n")
  result = cli.script(expected, timeout=120)
  assert result.returncode == 2
  assert result.stderr.splitlines() == ["tfsmooth: error: --x=1: bad"]
