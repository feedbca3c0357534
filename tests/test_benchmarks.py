"""The side-by-side benchmark (benchmarks/vs_pytorch.py) at tiny sizes, so that it cannot rot:
every workload's flags build its GAN (fast), workload A runs in every variant and the report
carries what the issue asks for (default suite); every workload in every variant (slow). And
benchmarks/bit_reproducibility.py on a small run."""

import importlib.util
import json
import os
import re

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                      "vs_pytorch.py")
HAVE_TORCH = importlib.util.find_spec("torch") is not None  # the [bench] extra


def test_every_workloads_flags_build_its_gan_at_tiny_size():
  """What each worker does first, in this process: the workload's flags (and --tiny's) parsed
  into a config, and the GAN built on the tiny sample shape."""
  from benchmarks import vs_pytorch  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import build  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import flags as tfs_flags  # pylint: disable=g-import-not-at-top
  for name, workload in vs_pytorch.WORKLOADS.items():
    try:
      tfs_flags.FLAGS(["vs_pytorch", *workload.flags, *vs_pytorch.TINY_FLAGS,
                       "--run_dir=/tmp/unused"])
      config = tfs_flags.train_config()
    finally:
      tfs_flags.FLAGS.unparse_flags()
    shape = vs_pytorch._sample_shape(workload, tiny=True)  # pylint: disable=protected-access
    model, _, _ = build.build_gan(config, shape)
    assert model.discriminator.count_params() > 0, name
    assert tuple(model.sample(2, 0).shape) == (2, *shape), name


def _run_tiny_benchmark(tmp_path, cli, workloads):
  variants = ["tfsmooth", "tf_graph"] + (["torch"] if HAVE_TORCH else [])
  out = tmp_path / "report.md"
  result = cli.file(SCRIPT, "--tiny", "--rounds=2", "--block_seconds=0.05", f"--out={out}",
                    f"--variants={','.join(variants)}", f"--workloads={','.join(workloads)}",
                    timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(out.with_suffix(".json").read_text())
  assert report["fma_peak_gflop_per_s"] is None or report["fma_peak_gflop_per_s"] > 1
  assert [r["workload"] for r in report["results"]] == workloads
  for result_ in report["results"]:
    counted = result_["flops_counted"]
    assert counted["tf_profiler"] > 0  # on the hand-written graph
    basis = "torch_counter" if HAVE_TORCH else "tf_profiler"  # what executes, where it ran
    assert result_["flops_basis"] == basis and result_["flops_per_step"] == counted[basis] > 0
    for row in result_["variants"].values():
      assert row["gflop_per_s"] == pytest.approx(row["median_it_per_s"] * counted[basis] / 1e9)
    assert set(result_["variants"]) == set(variants)
    for row in result_["variants"].values():
      assert len(row["it_per_s"]) == 2 and min(row["it_per_s"]) > 0
      assert row["peak_rss_mb"] > 10 and row["trace_seconds"] >= 0
    assert set(result_["ratios"]) == set(variants) - {"tfsmooth"}
    for ratio in result_["ratios"].values():
      assert ratio["min"] <= ratio["median"] <= ratio["max"] and ratio["min"] > 0
  text = out.read_text()
  assert "tfsmooth / tf_graph" in text and "FP32 FMA peak" in text


def test_tiny_benchmark_reports_every_variant_and_the_paired_ratios(tmp_path, cli):
  _run_tiny_benchmark(tmp_path, cli, ["A"])


@pytest.mark.slow
def test_tiny_benchmark_runs_every_workload(tmp_path, cli):
  from benchmarks import vs_pytorch  # pylint: disable=g-import-not-at-top
  _run_tiny_benchmark(tmp_path, cli, list(vs_pytorch.WORKLOADS))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch (the [bench] extra) is not installed")
def test_the_peers_count_the_same_networks_as_tfsmooth():
  """The PyTorch peer builds tfsmooth's architecture: the same parameter count per network."""
  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import build  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import config as tfs_config  # pylint: disable=g-import-not-at-top
  for shape, flags in (((16, 16, 3), dict(generator="particle", n_particles=32,
                                          discriminator="conv7", base_channels=4,
                                          loss="indicator", g_lr_ratio=None, g_lr=0.1)),
                       ((2,), dict(generator="mlp", noise_dim=8, g_hidden_units=(16, 16),
                                   discriminator="nk_mlp", hidden_units=(16,),
                                   loss="minimax"))):
    config = tfs_config.make(tfs_config.TrainConfig, run_dir="unused", **flags)
    model, _, _ = build.build_gan(config, shape)
    peer = peers.TorchPeer(config, shape)
    count = lambda params: sum(p.numel() for p in params)  # noqa: E731
    assert count(peer.d_params) == model.discriminator.count_params() - sum(
        int(v.numpy().size) for v in model.discriminator.non_trainable_variables)
    assert count(peer.g_params) == model.generator.count_params() - sum(
        int(v.numpy().size) for v in model.generator.non_trainable_variables)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch (the [bench] extra) is not installed")
def test_both_flop_counters_give_the_hand_count_of_a_forward_pass():
  """The counters the benchmark reports (TensorFlow's profiler on the hand-written graph,
  PyTorch's FlopCounterMode on the PyTorch peer) count one forward pass of the conv7
  discriminator as the hand count does: the same network, the same work, counted alike. Their
  totals for a whole step differ by what each executes (docs/performance.md)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.profiler import model_analyzer  # pylint: disable=g-import-not-at-top
  from tensorflow.python.profiler import option_builder  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top

  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import config as tfs_config  # pylint: disable=g-import-not-at-top
  shape, batch = (32, 32, 3), 16
  config = tfs_config.make(tfs_config.TrainConfig, run_dir="unused", generator="particle",
                           n_particles=32, discriminator="conv7", base_channels=8,
                           sn_norm="kernel", loss="indicator", g_lr_ratio=None, g_lr=0.1,
                           batch_size=batch)
  by_hand = peers.conv7_forward_flops(shape, 8, batch)
  graph_peer = peers.TFGraphPeer(config, shape)
  forward = tf.function(lambda x: graph_peer._conv_d(x, training=False))  # pylint: disable=protected-access
  graph = forward.get_concrete_function(tf.TensorSpec((batch, *shape), tf.float32)).graph
  options = (option_builder.ProfileOptionBuilder(
      option_builder.ProfileOptionBuilder.float_operation())
             .account_displayed_op_only(False).with_empty_output().build())
  options["account_type_regexes"] = [f"^{op}$" for op in peers.FMA_OPS]
  tf_count = model_analyzer.profile(graph=graph, options=options).total_float_ops
  torch_peer = peers.TorchPeer(config, shape)
  with FlopCounterMode(display=False) as counter, torch.no_grad():
    torch_peer._conv_d(torch.zeros(batch, 3, 32, 32), training=False)  # pylint: disable=protected-access
  # Spectral normalisation's matrix-vector products are the only work besides the hand count.
  assert by_hand <= tf_count <= 1.01 * by_hand, (tf_count, by_hand)
  assert by_hand <= counter.get_total_flops() <= 1.01 * by_hand, (counter.get_total_flops(),
                                                                   by_hand)


@pytest.mark.skipif(not HAVE_TORCH, reason="torch (the [bench] extra) is not installed")
def test_the_executed_flops_of_a_chu_step_are_the_hand_count():
  """Workload A's step at a small size (alternating, 2 discriminator steps with the RKHS
  penalty, a particle step): PyTorch's count of what its step executes is the hand count of
  ``peers.chu_step_flops`` (derived in its docstring) to 1%; the benchmark credits every variant
  with it. TensorFlow's profiler on the traced graph counts more (docs/performance.md)."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from benchmarks import peers  # pylint: disable=g-import-not-at-top
  from benchmarks import vs_pytorch  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import flags as tfs_flags  # pylint: disable=g-import-not-at-top
  shape, base, batch = (16, 16, 3), 8, 8
  try:
    tfs_flags.FLAGS(["vs_pytorch", *vs_pytorch.WORKLOADS["A"].flags, f"--base_channels={base}",
                     f"--batch_size={batch}", f"--particle_batch={batch}", "--n_particles=32",
                     "--run_dir=/tmp/unused"])
    config = tfs_flags.train_config()
  finally:
    tfs_flags.FLAGS.unparse_flags()
  real = np.random.default_rng(0).uniform(-1, 1, (2, batch, *shape)).astype(np.float32)
  executed = peers.torch_flops_per_step(peers.TorchPeer(config, shape), real)
  by_hand = peers.chu_step_flops(shape, base, batch, n_disc=2, particle_batch=batch)
  assert executed == pytest.approx(by_hand, rel=0.01)
  assert peers.flops_per_step(peers.TFGraphPeer(config, shape)) > by_hand


def test_bit_reproducibility_reports_identical_runs_of_a_deterministic_configuration(cli):
  """benchmarks/bit_reproducibility.py (docs/training.md quotes it) on the MoG GAN, which is
  bit-reproducible: both runs, one of them stopped and resumed, hash alike."""
  script = os.path.join(os.path.dirname(SCRIPT), "bit_reproducibility.py")
  result = cli.file(script, "--repeats=2", "--resume_at=2", "--flagfile=nk_mog_eta0.5.flags",
                    "--steps=4", "--log_every=2", "--checkpoint_every=2", "--sample_every=4",
                    "--eval_at_end=false", timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [line for line in result.stdout.splitlines() if line.startswith("run ")]
  assert len(lines) == 2 and lines[0].split()[2] == lines[1].split()[2], result.stdout
  assert "2 of 2 runs bit-identical to run 0" in result.stdout


def test_stability_monitor_cost_reports_the_overhead(cli):
  """benchmarks/stability_monitor_cost.py (docs/performance.md quotes it) on a small Chu-style
  run: every measure of an SN discriminator with gamma*, and the overhead line."""
  script = os.path.join(os.path.dirname(SCRIPT), "stability_monitor_cost.py")
  result = cli.file(script, "--flagfile=chu_default.flags", "--run_dir=unused",
                    "--dataset=mog_ring", "--discriminator=mlp", "--hidden_units=8",
                    "--n_particles=32", "--particle_batch=0", "--batch_size=16", "--period=2",
                    "--rounds=1", timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  # lipschitz real/fake, 2 operator norms, alpha, beta1, gamma*, gamma/gamma*
  assert re.search(r": 8 measures; step [\d.]+ ms .* [\d.]+% overhead at --stability_every=2",
                   result.stdout), result.stdout
