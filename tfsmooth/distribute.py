"""tf.distribute for tfsmooth: the strategy a run trains under, and the cross-replica helpers the
one ``train_step`` uses so that its result does not depend on the number of replicas.

The rule the step follows (docs/distributed.md): each replica's loss is its *share* of the
global loss. A mean over the global batch is a replica's sum divided by the global batch size
(``global_mean``); the Keras optimiser sums the replicas' gradients, which gives the gradient of
the global mean. A quantity that is nonlinear in the batch (the squared norm of a gradient, an
MMD over all pairs, an unrolled optimiser step) is computed from all-reduced or all-gathered
values (both differentiable: the gradient of an all-sum is an all-sum) and then enters each
replica's loss divided by the replica count (``share``). Random draws are made for the global
batch and each replica takes its slice (``replica_slice``), so they are the same draws on 1 or N
replicas. Metrics are shares too and are summed over the replicas once per step
(``all_sum``), so every replica returns the global value.

With one replica every helper is the identity, so a default-strategy run computes exactly what
it did before tfsmooth had strategies.
"""

import contextlib
import os
import socket
import urllib.parse

from tfsmooth import compat
from tfsmooth.errors import UserError

tf = compat.LazyModule("tensorflow")

TPU_CONNECT_SECONDS = 5.0  # how long --strategy=tpu waits for a TPU address to answer
# One MirroredStrategy per device set and process: a second one would number its collective
# instances from the same start, and the runtime, which caches collective instances by number,
# then fails with "Shape mismatch in the collective instance" (several runs in one process).
_MIRRORED = {}


# ---------------------------------------------------------------------------------------------
# Strategies


def split_cpu(replicas: int) -> list[str]:
  """``replicas`` logical CPU devices (for testing a multi-replica strategy on one CPU); must run
  before TensorFlow initialises its devices."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  with contextlib.suppress(RuntimeError):  # already initialised: use what is there, if enough
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
  devices = tf.config.list_logical_devices("CPU")
  if len(devices) < replicas:
    raise UserError(f"--cpu_replicas={replicas}: TensorFlow already runs with {len(devices)} "
                    "CPU device(s); split the CPU before TensorFlow starts (a new process)")
  return [device.name for device in devices[:replicas]]


def _check_tpu_reachable(tpu: str) -> None:
  """Refuses in seconds a TPU that cannot be reached, instead of TensorFlow's long retries."""
  if tpu in ("", "local"):
    if tpu == "local" and (os.path.exists("/dev/accel0") or os.path.exists("/dev/vfio/0")):
      return
    raise UserError("--strategy=tpu: no TPU on this machine; give --tpu=NAME (a Cloud TPU) or "
                    "--tpu=grpc://HOST:PORT, or --tpu=local on a TPU VM")
  if tpu.startswith("grpc://"):
    address = urllib.parse.urlsplit(tpu)
    try:
      socket.create_connection((address.hostname, address.port or 8470),
                               timeout=TPU_CONNECT_SECONDS).close()
    except OSError as error:
      raise UserError(f"--tpu={tpu}: not reachable within {TPU_CONNECT_SECONDS:g} s "
                      f"({error})") from None


def make_strategy(kind: str, cpu_replicas: int = 0, tpu: str = ""):
  """The ``tf.distribute.Strategy`` named by ``--strategy`` (``tfsmooth.app.config.STRATEGIES``).

  default: one device. mirrored: all local GPUs, or ``cpu_replicas`` logical CPU devices.
  multi_worker: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``. tpu: ``TPUStrategy`` through
  a ``TPUClusterResolver`` for ``tpu``.
  """
  if kind == "default":
    if cpu_replicas:
      raise UserError("--cpu_replicas needs --strategy=mirrored")
    return tf.distribute.get_strategy()
  if kind == "mirrored":
    if cpu_replicas:
      devices = tuple(split_cpu(cpu_replicas))
    elif tf.config.list_physical_devices("GPU"):
      devices = tuple(device.name for device in tf.config.list_logical_devices("GPU"))
    else:
      raise UserError("--strategy=mirrored: no GPU here; --cpu_replicas=N splits the CPU into N "
                      "replicas (for testing)")
    if devices not in _MIRRORED:
      _MIRRORED[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _MIRRORED[devices]
  if kind == "multi_worker":
    if "TF_CONFIG" not in os.environ:
      raise UserError("--strategy=multi_worker needs the TF_CONFIG environment variable (the "
                      "cluster and this worker's task; docs/distributed.md has an example)")
    return tf.distribute.MultiWorkerMirroredStrategy()
  if kind == "tpu":
    _check_tpu_reachable(tpu)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  raise ValueError(f"unknown strategy '{kind}'")


def is_chief(strategy) -> bool:
  """Whether this process writes the run directory: always, except on the non-chief workers of
  a ``MultiWorkerMirroredStrategy`` (the chief is task ``chief``, or ``worker`` 0 without one)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


# ---------------------------------------------------------------------------------------------
# Cross-replica helpers (called inside the train step, in replica context)


def replicas() -> int:
  """The number of replicas the current strategy trains on (1 outside any strategy)."""
  return tf.distribute.get_strategy().num_replicas_in_sync


def global_mean(values):
  """This replica's share of the mean over the global batch: its sum / (local size * replicas)
  (the replicas' local batches are equal; tfsmooth.app.train checks the sizes divide)."""
  values = tf.reshape(values, [-1])
  return tf.reduce_sum(values) / tf.cast(tf.size(values) * replicas(), values.dtype)


def share(value):
  """A global value computed identically on every replica, as this replica's share of it."""
  count = replicas()
  return value if count == 1 else value / count


def all_sum(values):
  """The sum over replicas of a nest of tensors (differentiable); identity on one replica."""
  if replicas() == 1:
    return values
  return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


def all_gather(value):
  """The replicas' ``value`` concatenated along axis 0 in replica order (differentiable)."""
  if replicas() == 1:
    return value
  return tf.distribute.get_replica_context().all_gather(value, axis=0)


def metrics_for_fit(metrics: dict) -> dict:
  """``train_step``'s metrics as ``fit`` can reduce them: Keras 3.15 reduces per-replica metrics
  under ``MultiWorkerMirroredStrategy`` with a mean over axis 0, which fails on scalars, so
  there they are returned with shape [1] (the mean over that axis gives the scalar back)."""
  if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
    return {name: tf.reshape(value, [1]) for name, value in metrics.items()}
  return metrics


def replica_slice(value):
  """This replica's part of a tensor made for the global batch: the ``r``-th of ``replicas()``
  equal consecutive pieces along axis 0, the piece ``fit`` gives replica ``r`` of a batch."""
  count = replicas()
  if count == 1:
    return value
  replica = tf.distribute.get_replica_context().replica_id_in_sync_group
  size = tf.shape(value)[0] // count
  return value[replica * size:(replica + 1) * size]
