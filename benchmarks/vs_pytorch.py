"""tfsmooth's train step side by side with the same step in PyTorch and as a hand-written
TensorFlow graph (benchmarks/peers.py), in one run:

    pip install -e .[bench]   # torch==2.13.0 (CPU), the optional extra
    python benchmarks/vs_pytorch.py --out=benchmarks/results/NAME.md

Each variant (``tfsmooth``: ``SmoothGAN.train_step`` as ``fit`` runs it, built by
``tfsmooth.app.build.build_gan``; ``tf_graph``; ``torch``) runs in its own warm process with
``--threads`` threads. The parent alternates timed blocks of about ``--block_seconds`` between
them (``--rounds`` rounds, the order rotated each round), so a busy machine slows all of them
alike; it reports each variant's median it/s with the range over blocks, the ratios of tfsmooth to
each peer per round (median and range: the paired ratio), GFLOP/s against the machine's FP32 FMA
peak measured here (a C kernel of independent FMAs on every thread, AVX2 and AVX-512 where the
CPU has it: ``fma_peak``; the higher is the peak), the tracing time and each process's peak RSS.

FLOPs per step are counted twice: by PyTorch's FlopCounterMode on the step the PyTorch peer
executes, and by TensorFlow's profiler on the hand-written graph as traced, before Grappler's
optimisations (on workload A 1.08x PyTorch's count, on B 2.1x; docs/performance.md). Both count the
convolutions and matrix products (forward, gradients and the penalty's second-order terms; a
multiply-add is 2 FLOPs), the work that FMA units do; element-wise ops are left out. Every variant
is credited with the executed count, PyTorch's (the graph's when the torch peer did not run); a
test holds both counters to the hand count of a forward pass. Real
batches come from a small pool in memory, so data loading is not timed (the same for all).
"""

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tfsmooth.app import flags as tfs_flags  # noqa: E402  (tfsmooth's flags: a workload is a list of them)

VARIANTS = ("tfsmooth", "tf_graph", "torch")


@dataclasses.dataclass(frozen=True)
class Workload:
  description: str
  sample_shape: tuple[int, ...]
  flags: tuple[str, ...]  # tfsmooth flags


_CHU_DEFAULT = os.path.join(ROOT, "tfsmooth", "runs", "chu_default.flags")
WORKLOADS = {
    "A": Workload(
        "Chu step: conv7 SN-ELU discriminator 64..512 channels (kernel norm) on 32x32x3, batch "
        "64, 2 discriminator steps with the RKHS penalty, 1 particle step (SGD, 64 particles)",
        (32, 32, 3),
        ("--generator=particle", "--n_particles=10000", "--particle_batch=64",
         "--discriminator=conv7", "--base_channels=64", "--activation=elu", "--sn_norm=kernel",
         "--loss=indicator", "--penalty=rkhs", "--n_disc=2", "--update=alternating",
         "--batch_size=64", "--d_optimizer=adam", "--d_lr=2e-4", "--g_optimizer=sgd",
         "--g_lr=0.01")),
    "B": Workload(
        "N&K MoG step: MLP generator 256-128-128-2, MLP discriminator 2-128-1, batch 512, "
        "simultaneous updates, eta = 0.5, Adam",
        (2,),
        (f"--flagfile={os.path.join(ROOT, 'tfsmooth', 'runs', 'nk_mog_eta0.5.flags')}",
         "--update=simultaneous")),
    "fig1": Workload(
        "Figure 1 sweep member (runs/chu_fig1.flags): conv7 8..64 channels, exact norm, MNIST "
        "28x28x1, batch 64, 2 discriminator steps + RKHS penalty, 1024 particles, 64 per step",
        (28, 28, 1),
        (f"--flagfile={_CHU_DEFAULT}", "--base_channels=8", "--n_particles=1024",
         "--g_lr_ratio=1")),
    "demo": Workload(
        "`make demo` (runs/chu_default.flags): conv7 16..128 channels, exact norm, MNIST 28x28x1,"
        " batch 64, 2 discriminator steps + RKHS penalty, 1024 particles, 64 per step",
        (28, 28, 1),
        (f"--flagfile={_CHU_DEFAULT}",)),
}
# --tiny: sizes for the smoke test (tests/test_benchmarks.py), appended to every workload.
TINY_FLAGS = ("--base_channels=2", "--batch_size=8", "--n_particles=32", "--particle_batch=8",
              "--noise_dim=8", "--g_hidden_units=8", "--hidden_units=8")
TINY_IMAGE = (8, 8)
POOL = 4  # real batches cycled through
# Who counts FLOPs, in which variant's worker: TensorFlow's profiler on the hand-written graph
# as traced (before Grappler's optimisations), PyTorch's FlopCounterMode on the step it runs.
COUNTERS = {"tf_graph": "tf_profiler", "torch": "torch_counter"}

flags.DEFINE_list("workloads", list(WORKLOADS), f"Workloads to run, of {', '.join(WORKLOADS)}.")
flags.DEFINE_list("variants", list(VARIANTS), f"Variants to time, of {', '.join(VARIANTS)}.")
flags.DEFINE_integer("rounds", 5, "Timed blocks per variant (after one warm-up block).",
                     lower_bound=1)
flags.DEFINE_float("block_seconds", 10.0, "About how long each timed block runs.")
flags.DEFINE_integer("threads", os.cpu_count(), "Threads each variant computes with.",
                     lower_bound=1)
flags.DEFINE_string("out", "", "Also write the report (markdown) to this file.")
flags.DEFINE_bool("tiny", False, "Tiny sizes, for the smoke test.")
flags.DEFINE_string("worker", "", "Internal: run as the worker process of this variant.")
flags.DEFINE_string("workload", "", "Internal: the worker's workload.")
FLAGS = flags.FLAGS


# ---------------------------------------------------------------------------------------------
# The FP32 FMA peak of this machine

_FMA_KERNEL = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __AVX512F__
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUM _mm512_reduce_add_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float SUM(__m256 x) { float o[8]; _mm256_storeu_ps(o, x); return o[0] + o[7]; }
#endif
/* 12 independent accumulators in registers: enough chains to cover the FMA latency. */
#define STEP(a) a = FMA(a, mul, add)
static long iterations;
static float sink[64];
static void *run(void *arg) {
  long id = (long)arg;
  vec mul = SET1(0.999999f), add = SET1(1e-6f);
  vec a0 = SET1(0), a1 = SET1(1), a2 = SET1(2), a3 = SET1(3), a4 = SET1(4), a5 = SET1(5);
  vec a6 = SET1(6), a7 = SET1(7), a8 = SET1(8), a9 = SET1(9), a10 = SET1(10), a11 = SET1(11);
  for (long i = 0; i < iterations; i++) {
    STEP(a0); STEP(a1); STEP(a2); STEP(a3); STEP(a4); STEP(a5);
    STEP(a6); STEP(a7); STEP(a8); STEP(a9); STEP(a10); STEP(a11);
  }
  a0 = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));
  sink[id] = SUM(ADD(a0, ADD(ADD(a8, a9), ADD(a10, a11))));
  return NULL;
}
int main(int argc, char **argv) {
  int threads = atoi(argv[1]);
  iterations = atol(argv[2]);
  pthread_t pool[64];
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long t = 0; t < threads; t++) pthread_create(&pool[t], NULL, run, (void *)t);
  for (int t = 0; t < threads; t++) pthread_join(pool[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds = (end.tv_sec - start.tv_sec) + 1e-9 * (end.tv_nsec - start.tv_nsec);
  /* 12 FMAs of LANES lanes, 2 FLOPs each, per iteration and thread */
  printf("%f %f\n", threads * (double)iterations * 12 * LANES * 2 / seconds / 1e9, sink[0]);
  return 0;
}
"""
ISAS = {"avx2": ["-mavx2", "-mfma"], "avx512": ["-mavx512f"]}


def fma_peak(threads: int, iterations: int = 100_000_000, repeats: int = 3) -> dict:
  """GFLOP/s of FP32 fused multiply-adds on ``threads`` threads, per instruction set this CPU
  has (AVX2: 8 lanes, AVX-512: 16; 2 FLOPs per lane), the best of ``repeats`` runs; empty
  without a C compiler."""
  with open("/proc/cpuinfo", encoding="utf-8") as f:
    cpu_flags = set(next((line for line in f if line.startswith("flags")), ":").split(":")[1]
                    .split())
  peaks = {}
  with tempfile.TemporaryDirectory() as tmp:
    source = os.path.join(tmp, "fma.c")
    with open(source, "w", encoding="utf-8") as f:
      f.write(_FMA_KERNEL)
    for isa, options in ISAS.items():
      if isa == "avx512" and "avx512f" not in cpu_flags:
        continue
      binary = os.path.join(tmp, isa)
      try:
        subprocess.run(["cc", "-O2", *options, "-pthread", source, "-o", binary], check=True,
                       capture_output=True)
      except (OSError, subprocess.CalledProcessError):
        continue
      peaks[isa] = max(float(subprocess.run(
          [binary, str(threads), str(iterations)], check=True, capture_output=True,
          text=True).stdout.split()[0]) for _ in range(repeats))
  return peaks


# ---------------------------------------------------------------------------------------------
# A worker: one variant of one workload in its own process


def _send(message: dict):
  print("@@" + json.dumps(message), flush=True)


def _sample_shape(workload: Workload, tiny: bool):
  shape = workload.sample_shape
  return (*TINY_IMAGE, shape[2]) if tiny and len(shape) == 3 else shape


def _build_runner(variant: str, config, shape, threads: int):
  """``run(steps) -> steps run`` for ``variant`` (at least ``steps``), and for tf_graph and
  torch a function counting FLOPs per step (TensorFlow's profiler on the graph, PyTorch's
  FlopCounterMode on the step it runs)."""
  rng = np.random.default_rng(0)
  pool = rng.uniform(-1, 1, (POOL, config.gan.n_disc, config.batch_size, *shape)).astype(
      np.float32)
  if variant == "torch":
    from benchmarks import peers  # pylint: disable=g-import-not-at-top
    peer = peers.TorchPeer(config, shape, threads=threads)

    def run_torch(steps):
      for i in range(steps):
        peer.step(pool[i % POOL])
      return steps
    return run_torch, lambda: peers.torch_flops_per_step(peer, pool[0])

  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfsmooth import compat  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  if threads != os.cpu_count():
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  if variant == "tf_graph":
    from benchmarks import peers  # pylint: disable=g-import-not-at-top
    peer = peers.TFGraphPeer(config, shape)
    batches = [tf.constant(b) for b in pool]

    def run_graph(steps):
      for i in range(steps):
        peer.step(batches[i % POOL])
      return steps
    return run_graph, lambda: peers.flops_per_step(peer)

  import keras  # pylint: disable=g-import-not-at-top

  from tfsmooth import data  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import build  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import train  # pylint: disable=g-import-not-at-top
  model, _, _ = build.build_gan(config, shape)
  model.steps_per_execution = train.execution_steps(config, 0)  # as the run sets it
  # Plain batches, as a run gives fit (which groups n_disc of them into a step).
  dataset = tf.data.Dataset.from_tensor_slices(pool).unbatch().repeat().with_options(
      data.pipeline_options())  # a run's input pipeline options

  class ReadLogs(keras.callbacks.Callback):
    """What the run's callback does after every step at least: read the metrics."""

    def on_train_batch_end(self, batch, logs=None):
      del batch
      for value in (logs or {}).values():
        float(value)

  def run_fit(steps):
    # fit runs whole executions: a multiple of steps_per_execution
    steps = -(-steps // model.steps_per_execution) * model.steps_per_execution
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[ReadLogs()])
    return steps
  return run_fit, None


def worker():
  workload = WORKLOADS[FLAGS.workload]
  config = tfs_flags.train_config()  # the workload's tfsmooth flags, parsed with this command's
  shape = _sample_shape(workload, FLAGS.tiny)
  run, count_flops = _build_runner(FLAGS.worker, config, shape, FLAGS.threads)
  start = time.perf_counter()
  steps = run(1)
  _send({"first_call_seconds": time.perf_counter() - start, "steps": steps})
  for line in sys.stdin:
    command = json.loads(line)
    if "steps" in command:
      start = time.perf_counter()
      steps = run(command["steps"])
      _send({"seconds": time.perf_counter() - start, "steps": steps})
    else:
      _send({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
             "flops_per_step": count_flops() if count_flops else None})
      return


class Worker:
  """The parent's handle on a worker process."""

  def __init__(self, variant: str, workload: str):
    self.variant = variant
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={variant}",
            f"--workload={workload}", f"--threads={FLAGS.threads}",
            *WORKLOADS[workload].flags, *(TINY_FLAGS + ("--tiny",) if FLAGS.tiny else ()),
            # a training flagfile needs a run directory; the benchmark writes none
            f"--run_dir={os.path.join(tempfile.gettempdir(), 'tfsmooth_benchmark_unused')}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    # TensorFlow's start-up lines, shown if the worker fails; closed with the process.
    self.stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=self.stderr, text=True, env=env, cwd=ROOT)

  def receive(self) -> dict:
    for line in self.process.stdout:
      if line.startswith("@@"):
        return json.loads(line[2:])
    self.process.wait()
    self.stderr.seek(0)
    raise RuntimeError(f"the {self.variant} worker exited ({self.process.returncode}) without "
                       f"answering; its stderr ends:\n{self.stderr.read()[-3000:]}")

  def request(self, **command) -> dict:
    self.process.stdin.write(json.dumps(command) + "\n")
    self.process.stdin.flush()
    return self.receive()

  def finish(self) -> dict:
    result = self.request(finish=True)
    self.process.wait()
    return result


def time_workload(name: str, variants, peak: float | None, log) -> dict:
  """Alternating timed blocks of every variant of workload ``name``; returns its results."""
  workers, first_call = {}, {}
  for variant in variants:  # built one at a time: tracing and building are not overlapped
    workers[variant] = Worker(variant, name)
    first_call[variant] = workers[variant].receive()
  steps = {}
  for variant, worker_ in workers.items():  # warm-up block, which also sizes the timed blocks
    probe = worker_.request(steps=2)
    steps[variant] = max(1, round(FLAGS.block_seconds * probe["steps"] / probe["seconds"]))
    worker_.request(steps=steps[variant])
  rates = {variant: [] for variant in variants}
  for r in range(FLAGS.rounds):
    order = variants[r % len(variants):] + variants[:r % len(variants)]
    for variant in order:
      block = workers[variant].request(steps=steps[variant])
      rates[variant].append(block["steps"] / block["seconds"])
    log(f"  {name} round {r + 1}/{FLAGS.rounds}: " + ", ".join(
        f"{v} {rates[v][-1]:.4g} it/s" for v in variants))
  finals = {variant: worker_.finish() for variant, worker_ in workers.items()}
  counted = {COUNTERS[v]: f["flops_per_step"] for v, f in finals.items() if f["flops_per_step"]}
  # The work of the step as it executes: PyTorch's count where the peer ran, else the graph's.
  basis = next((c for c in ("torch_counter", "tf_profiler") if c in counted), None)
  flops = counted.get(basis)
  result = {"workload": name, "description": WORKLOADS[name].description,
            "steps_per_block": steps, "flops_per_step": flops, "flops_basis": basis,
            "flops_counted": counted, "variants": {}}
  for variant in variants:
    median = statistics.median(rates[variant])
    result["variants"][variant] = {
        "it_per_s": rates[variant], "median_it_per_s": median,
        "gflop_per_s": median * flops / 1e9 if flops else None,
        "fraction_of_peak": median * flops / 1e9 / peak if flops and peak else None,
        # tracing and building the step: the first call less its steps at the timed rate
        "trace_seconds": max(0.0, first_call[variant]["first_call_seconds"] -
                             first_call[variant]["steps"] / median),
        "peak_rss_mb": finals[variant]["peak_rss_mb"]}
  if "tfsmooth" in variants:
    result["ratios"] = {}
    for peer in (v for v in variants if v != "tfsmooth"):
      paired = [a / b for a, b in zip(rates["tfsmooth"], rates[peer])]
      result["ratios"][peer] = {"per_round": paired, "median": statistics.median(paired),
                                "min": min(paired), "max": max(paired)}
  return result


# ---------------------------------------------------------------------------------------------
# The report


def machine() -> dict:
  model, cpu_flags = platform.processor(), set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
          cpu_flags = set(line.split(":", 1)[1].split())
  except OSError:
    pass
  versions = {"python": platform.python_version()}
  for package in ("numpy", "tensorflow", "keras", "torch"):
    try:  # from the installed metadata: the parent imports no framework
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = "not installed"
  return {"cpu": model, "logical_cpus": os.cpu_count(),
          "simd": sorted(cpu_flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"}),
          "versions": versions}


def report(results: list[dict], info: dict) -> str:
  peak = info["fma_peak_gflop_per_s"]
  lines = [f"# tfsmooth vs PyTorch and a hand-written TF graph ({info['date']})", "",
           f"Command: `{info['command']}`", "",
           f"Machine: {info['machine']['cpu']}, {info['machine']['logical_cpus']} logical CPUs "
           f"({', '.join(info['machine']['simd'])}); {info['threads']} threads per variant; "
           + ", ".join(f"{k} {v}" for k, v in info["machine"]["versions"].items()) + ".", "",
           "FP32 FMA peak measured here: " + (f"{peak:.1f} GFLOP/s (" + ", ".join(
               f"{isa} {value:.1f}" for isa, value in info["fma_peaks"].items()) + ")"
               if peak else "not measured (no C compiler)") +
           f". {info['rounds']} timed rounds of about {info['block_seconds']} s per variant, "
           "alternating; it/s is the median with the range over rounds; ratios are paired per "
           "round (tfsmooth / peer). Trace: the first call less its steps at the timed rate "
           "(graph tracing and building; PyTorch has none). Peak RSS: each process's maximum "
           "resident set (TensorFlow's or PyTorch's runtime included).", ""]
  for result in results:
    lines += [f"## {result['workload']}: {result['description']}", "",
              "FLOPs per step: " + flops_line(result), "",
              "| variant | it/s (median) | range | GFLOP/s | of FMA peak | trace, s "
              "| peak RSS, MB |", "|---|---|---|---|---|---|---|"]
    for variant, row in result["variants"].items():
      rates = row["it_per_s"]
      lines.append(
          f"| {variant} | {row['median_it_per_s']:.4g} | {min(rates):.4g}-{max(rates):.4g} | "
          + (f"{row['gflop_per_s']:.1f}" if row["gflop_per_s"] else "-") + " | "
          + (f"{100 * row['fraction_of_peak']:.0f}%" if row["fraction_of_peak"] else "-")
          + f" | {row['trace_seconds']:.2f} | {row['peak_rss_mb']:.0f} |")
    for peer, ratio in result.get("ratios", {}).items():
      lines += ["", f"tfsmooth / {peer}: **{ratio['median']:.2f}x** (paired over rounds: "
                f"{ratio['min']:.2f}-{ratio['max']:.2f})"]
    lines.append("")
  return "\n".join(lines)


def flops_line(result: dict) -> str:
  """The FLOP counts of a workload, the basis of GFLOP/s and the share of peak first."""
  counted, basis = result.get("flops_counted") or {}, result.get("flops_basis")
  if not counted:
    return "not counted"
  names = {"torch_counter": "as the PyTorch step executes them (PyTorch's FlopCounterMode)",
           "tf_profiler": "by TensorFlow's profiler on the hand-written graph as traced, before "
                          "Grappler's optimisations"}
  parts = [f"{counted[basis] / 1e9:.3g} GFLOP {names[basis]}, the basis of GFLOP/s and of the "
           "share of peak"]
  parts += [f"{value / 1e9:.3g} GFLOP {names[name]} ({value / counted[basis]:.2f}x)"
            for name, value in counted.items() if name != basis]
  return "; ".join(parts)


def main(argv):
  del argv
  if FLAGS.worker:
    worker()
    return
  unknown = [w for w in FLAGS.workloads if w not in WORKLOADS] + [
      v for v in FLAGS.variants if v not in VARIANTS]
  if unknown:
    raise app.UsageError(f"unknown workloads or variants: {', '.join(unknown)}")
  def log(message):
    return print(message, file=sys.stderr, flush=True)
  log("measuring the FP32 FMA peak")
  peaks = fma_peak(FLAGS.threads, iterations=2_000_000 if FLAGS.tiny else 100_000_000)
  peak = max(peaks.values()) if peaks else None
  info = {"date": datetime.date.today().isoformat(),
          "command": " ".join(["python", "benchmarks/vs_pytorch.py", *sys.argv[1:]]),
          "machine": machine(), "threads": FLAGS.threads, "fma_peak_gflop_per_s": peak,
          "fma_peaks": peaks, "rounds": FLAGS.rounds, "block_seconds": FLAGS.block_seconds}
  results = []
  for name in FLAGS.workloads:
    log(f"workload {name}: {WORKLOADS[name].description}")
    results.append(time_workload(name, list(FLAGS.variants), peak, log))
  text = report(results, info)
  print(text)
  if FLAGS.out:
    with open(FLAGS.out, "w", encoding="utf-8") as f:
      f.write(text + "\n")
    with open(os.path.splitext(FLAGS.out)[0] + ".json", "w", encoding="utf-8") as f:
      json.dump({**info, "results": results}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
