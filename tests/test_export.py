"""The run's SavedModels in every loader (tfsmooth.app.export): TF Serving's graph-mode loader (as
``saved_model_cli run`` uses it) and eager ``tf.saved_model.load`` give the outputs of the
networks restored from the run's final checkpoint, for each generator kind."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import gan
from tfsmooth import networks
from tfsmooth.app import build
from tfsmooth.app import config as tfs_config
from tfsmooth.app import export
from tfsmooth.app import train

_COMMON = dict(steps=4, log_every=2, sample_every=4, checkpoint_every=2, eval_at_end=False,
               seed=5, loss="minimax", penalty="none", n_disc=1, d_optimizer="adam",
               g_optimizer="adam", d_lr=1e-3, g_lr=1e-3)
RUNS = {
    "particle": dict(dataset="mog_ring", generator="particle", n_particles=64, particle_batch=16,
                     discriminator="mlp", hidden_units=(16,), batch_size=16),
    "mlp": dict(dataset="mog_ring", generator="mlp", noise_dim=8, g_hidden_units=(16,),
                discriminator="nk_mlp", hidden_units=(16,), batch_size=16),
    "dcgan": dict(dataset="stacked_mnist", generator="dcgan", g_base_channels=4, noise_dim=8,
                  discriminator="dcgan", base_channels=4, batch_size=8),
}
NUM, SEED = 5, 7


def _trained(tmp_path, kind):
  """A tiny completed run and its networks restored from the final checkpoint."""
  config = tfs_config.make(tfs_config.TrainConfig, run_dir=str(tmp_path / kind),
                           **_COMMON, **RUNS[kind])
  train.train(config, verbose=0)
  shape = (2,) if config.dataset == "mog_ring" else (28, 28, 3)
  generator = build.build_generator(config.generator, shape)
  discriminator = build.build_discriminator(config.discriminator, shape)
  tf.train.Checkpoint(generator=generator, discriminator=discriminator).restore(
      tf.train.latest_checkpoint(str(tmp_path / kind / "checkpoints"))).expect_partial()
  return config, generator, discriminator


def _as_in_training(discriminator):
  """The discriminator's inference function as training runs it: traced into a graph (eager
  execution may fuse ops differently and round differently in the last bit)."""
  return tf.function(lambda samples: discriminator(samples, training=False))


def _graph_mode_run(path, feeds):
  """Runs the ``serving_default`` signature of the SavedModel at ``path`` as TF Serving does:
  the TF1 loader in a graph and session, fed by input name; returns ``{output name: array}``."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    signature = meta_graph.signature_def["serving_default"]
    assert set(signature.inputs) == set(feeds)
    return session.run({name: output.name for name, output in signature.outputs.items()},
                       {signature.inputs[name].name: value for name, value in feeds.items()})


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_exports_run_in_graph_mode_and_eager_with_the_training_outputs(tmp_path, kind):
  config, generator, discriminator = _trained(tmp_path, kind)
  latent = gan.latent_sampler(generator, config.generator.noise_dim)
  in_training = tf.function(gan.generate)(generator, latent, NUM, SEED).numpy()
  exports = tmp_path / kind / "export"

  served = _graph_mode_run(str(exports / "generator"),
                           {"num": np.int32(NUM), "seed": np.int64(SEED)})
  assert list(served) == ["samples"]
  np.testing.assert_array_equal(served["samples"], in_training)
  np.testing.assert_array_equal(export.load_generator(str(exports / "generator"))(NUM, SEED),
                                in_training)
  other_seed = export.load_generator(str(exports / "generator"))(NUM, SEED + 1)
  assert not np.array_equal(other_seed, in_training)

  scores = _as_in_training(discriminator)(in_training).numpy()
  assert scores.shape == (NUM, 1)
  served = _graph_mode_run(str(exports / "discriminator"), {"samples": in_training})
  assert list(served) == ["score"]
  np.testing.assert_array_equal(served["score"], scores)
  eager = tf.saved_model.load(str(exports / "discriminator"))
  np.testing.assert_array_equal(eager.score(tf.constant(in_training))["score"].numpy(), scores)


def test_saved_model_cli_runs_both_exports(tmp_path):
  """The command docs/serving.md gives, as a user runs it."""
  config, generator, discriminator = _trained(tmp_path, "mlp")
  latent = gan.latent_sampler(generator, config.generator.noise_dim)
  samples = tf.function(gan.generate)(generator, latent, 2, SEED).numpy()
  exports = tmp_path / "mlp" / "export"
  np.save(tmp_path / "samples.npy", samples)
  for name, inputs, output in (
      ("generator", ["--input_exprs", f"num=2;seed={SEED}"], "samples"),
      ("discriminator", ["--inputs", f"samples={tmp_path / 'samples.npy'}"], "score")):
    outdir = tmp_path / f"out_{name}"
    result = subprocess.run(
        [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "run",
         "--dir", str(exports / name), "--tag_set", "serve", "--signature_def",
         "serving_default", *inputs, "--outdir", str(outdir)],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(outdir) == [f"{output}.npy"]
    expected = samples if name == "generator" else _as_in_training(discriminator)(samples)
    np.testing.assert_array_equal(np.load(outdir / f"{output}.npy"), expected)


def test_load_generator_reads_the_exports_of_earlier_versions(tmp_path):
  """Run directories written before tfsmooth.app.export hold a tf.Module whose ``sample`` returned
  the samples tensor itself; ``--mode=eval`` reads them through ``load_generator`` too."""
  generator = networks.mlp_generator(4, 2, (8,))
  latent = gan.latent_sampler(generator, 4)

  class EarlierExport(tf.Module):
    def __init__(self):
      super().__init__()
      self.generator = generator

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int64)])
    def sample(self, num, seed):
      return gan.generate(self.generator, latent, num, seed)

  tf.saved_model.save(EarlierExport(), str(tmp_path / "generator"))
  np.testing.assert_array_equal(export.load_generator(str(tmp_path / "generator"))(NUM, SEED),
                                tf.function(gan.generate)(generator, latent, NUM, SEED).numpy())
