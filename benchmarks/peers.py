"""The peers tfsmooth's train step is timed against (benchmarks/vs_pytorch.py): the same GAN step
written directly, once as a hand-written TensorFlow graph and once in PyTorch (eager).

Both read the run's ``TrainConfig`` and implement the two families the benchmark's workloads use,
with tfsmooth's architecture, batch, dtype (float32), optimisers and penalty:

- ``conv7`` discriminator (spectrally normalised convolutions, exact or kernel norm, smooth
  activation, SN dense output, alpha) against a particle generator, the indicator loss and the
  RKHS penalty on interpolates (Chu et al. Section 7);
- ``nk_mlp`` discriminator against an MLP generator, the minimax loss and Nagarajan-Kolter's
  regulariser ``eta |grad_D V|^2`` (their Section 5 and public code).

Each is written as a user of that framework would write it: one forward pass of each network per
player, the penalty's gradient with ``create_graph``; simultaneous updates take both players'
gradients from one shared forward pass. Neither computes metrics. A peer is
``peer.step(real_batches)`` with ``real_batches`` of shape ``(n_disc, batch, *sample_shape)``
(a NumPy array); initial weights are random (the timings do not depend on them).
"""

import itertools
import math

import numpy as np

from tfsmooth import networks

CONV7_LAYOUT = networks.CONV7_LAYOUT  # (kernel, stride, channel multiplier) per conv layer


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
  """TensorFlow's ``padding="SAME"``: ``(output size, pad before, pad after)``."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return out, total // 2, total - total // 2


def conv7_shapes(sample_shape, base_channels: int):
  """Per conv layer ``(kernel, stride, c_in, c_out, (h, w) in, (h, w) out, pads)``, and the
  size of the flattened output."""
  height, width, channels = sample_shape
  layers = []
  for kernel, stride, multiplier in CONV7_LAYOUT:
    out_h, top, bottom = same_padding(height, kernel, stride)
    out_w, left, right = same_padding(width, kernel, stride)
    layers.append((kernel, stride, channels, base_channels * multiplier, (height, width),
                   (out_h, out_w), (top, bottom, left, right)))
    height, width, channels = out_h, out_w, base_channels * multiplier
  return layers, height * width * channels


def _family(config) -> str:
  kinds = (config.discriminator.kind, config.generator.kind)
  if kinds == ("conv7", "particle") and config.gan.loss == "indicator":
    return "conv7"
  if kinds == ("nk_mlp", "mlp") and config.gan.loss == "minimax":
    return "nk_mlp"
  raise ValueError(f"no peer for {kinds} with loss {config.gan.loss}")


# ---------------------------------------------------------------------------------------------
# Hand-written TensorFlow graph


class TFGraphPeer:
  """The step as one ``tf.function`` over plain variables and ``tf.nn`` ops, Keras optimisers."""

  def __init__(self, config, sample_shape, seed: int = 0):
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.tf = tf
    self.config = config
    self.family = _family(config)
    self.sample_shape = tuple(sample_shape)
    tf.random.set_seed(seed)
    self.rng = tf.random.Generator.from_seed(seed)
    gan = config.gan
    self.d_opt = keras.optimizers.Adam(config.d_lr, beta_1=config.d_beta1, beta_2=config.d_beta2)
    if config.g_optimizer == "sgd":
      self.g_opt = keras.optimizers.SGD(config.g_lr)
    else:
      self.g_opt = keras.optimizers.Adam(config.g_lr, beta_1=config.g_beta1,
                                         beta_2=config.g_beta2)
    glorot = keras.initializers.GlorotUniform(seed)
    if self.family == "conv7":
      self.exact = config.discriminator.sn_norm == "exact"
      self.layers = []
      shapes, flat = conv7_shapes(self.sample_shape, config.discriminator.base_channels)
      for kernel, stride, c_in, c_out, _, out_hw, _ in shapes:
        u_shape = (1, *out_hw, c_out) if self.exact else (1, c_out)
        self.layers.append({"w": tf.Variable(glorot((kernel, kernel, c_in, c_out))),
                            "b": tf.Variable(tf.zeros([c_out])), "stride": stride,
                            "u": tf.Variable(tf.random.normal(u_shape), trainable=False)})
      self.dense = tf.Variable(glorot((flat, 1)))
      self.dense_b = tf.Variable(tf.zeros([1]))
      self.dense_u = tf.Variable(tf.random.normal((1, 1)), trainable=False)
      self.d_vars = [v for layer in self.layers for v in (layer["w"], layer["b"])] + [
          self.dense, self.dense_b]
      self.particles = tf.Variable(config.generator.particle_init_std * tf.random.normal(
          (config.generator.n_particles, *self.sample_shape)))
      self.g_vars = [self.particles]
    else:
      ortho = keras.initializers.Orthogonal(gain=0.8, seed=seed)

      def mlp(sizes):
        return [tf.Variable(ortho((a, b))) for a, b in itertools.pairwise(sizes)], [
            tf.Variable(tf.zeros([b])) for b in sizes[1:]]
      dim = self.sample_shape[0]
      self.g_w, self.g_b = mlp([config.generator.noise_dim, *config.generator.hidden_units, dim])
      self.d_w, self.d_b = mlp([dim, *config.discriminator.hidden_units, 1])
      self.d_vars = self.d_w + self.d_b
      self.g_vars = self.g_w + self.g_b
    self.d_opt.build(self.d_vars)
    self.g_opt.build(self.g_vars)
    spec = tf.TensorSpec((gan.n_disc, config.batch_size, *self.sample_shape), tf.float32)
    self._step = tf.function(self._train_step, input_signature=[spec])

  # -- conv7 + particles ----------------------------------------------------------------------

  def _sn(self, w, u, apply, adjoint, update):
    tf = self.tf
    def normalize(x):
      return x / (tf.norm(x) + 1e-12)
    u = tf.convert_to_tensor(u) if not update else u
    if update:
      v = normalize(adjoint(tf.stop_gradient(w), u))
      new_u = normalize(apply(tf.stop_gradient(w), v))
      u.assign(new_u)
      u = new_u
    v = tf.stop_gradient(normalize(adjoint(w, u)))
    return tf.reduce_sum(tf.stop_gradient(u) * apply(w, v))

  def _conv_d(self, x, training):
    tf = self.tf
    activation = {"elu": tf.nn.elu, "softplus": tf.nn.softplus, "tanh": tf.nn.tanh}[
        self.config.discriminator.activation]
    for layer in self.layers:
      w, s = layer["w"], layer["stride"]
      in_shape = (1, *x.shape[1:])
      def conv(k, v, s=s):
        return tf.nn.conv2d(v, k, s, "SAME")
      if self.exact:
        def adjoint(k, u, s=s, in_shape=in_shape):
          return tf.nn.conv2d_transpose(
                    u, k, in_shape, s, "SAME")
        apply = conv
      else:
        cout = w.shape[-1]
        def apply(k, v, cout=cout):
          return tf.matmul(v, tf.reshape(k, (-1, cout)))
        def adjoint(k, u, cout=cout):
          return tf.matmul(u, tf.reshape(k, (-1, cout)),
                                                            transpose_b=True)
      sigma = self._sn(w, layer["u"], apply, adjoint, training)
      x = activation(conv(w / sigma, x) + layer["b"])
    x = tf.reshape(x, (tf.shape(x)[0], -1))
    sigma = self._sn(self.dense, self.dense_u, lambda k, v: tf.matmul(v, k),
                     lambda k, u: tf.matmul(u, k, transpose_b=True), training)
    return self.config.discriminator.alpha * (tf.matmul(x, self.dense / sigma) + self.dense_b)

  def _conv_step(self, real_batches):
    tf, config = self.tf, self.config
    gan, batch = config.gan, config.batch_size
    n = config.generator.n_particles
    for k in range(gan.n_disc):
      real = real_batches[k]
      fake = tf.gather(self.particles, self.rng.uniform([batch], 0, n, tf.int32))
      t = self.rng.uniform([batch, 1, 1, 1])
      x_hat = t * real + (1 - t) * fake
      with tf.GradientTape() as tape:
        out = self._conv_d(tf.concat([real, fake], 0), training=True)
        value = tf.reduce_mean(out[batch:]) - tf.reduce_mean(out[:batch])
        with tf.GradientTape() as inner:
          inner.watch(x_hat)
          phi = self._conv_d(x_hat, training=False)
        grad = inner.gradient(phi, x_hat)
        penalty = (gan.output_penalty_weight * tf.reduce_mean(tf.square(phi)) +
                   gan.gradient_penalty_weight * 0.5 * gan.kernel_sigma**2 *
                   tf.reduce_mean(tf.reduce_sum(tf.square(grad), [1, 2, 3]))) / (
                       2 * gan.penalty_lambda)
        d_loss = -value + penalty
      self.d_opt.apply(tape.gradient(d_loss, self.d_vars), self.d_vars)
    size = gan.particle_batch or n
    with tf.GradientTape() as tape:
      fake = tf.gather(self.particles, self.rng.uniform([size], 0, n, tf.int32)
                       if gan.particle_batch else tf.range(n))
      g_loss = tf.reduce_mean(self._conv_d(fake, training=False))
    self.g_opt.apply(tape.gradient(g_loss, self.g_vars), self.g_vars)
    return g_loss

  # -- nk_mlp + MLP generator -----------------------------------------------------------------

  def _mlp(self, x, weights, biases, input_scale=1.0):
    tf = self.tf
    x = x * input_scale
    for i, (w, b) in enumerate(zip(weights, biases)):
      x = tf.matmul(x, w) + b
      if i < len(weights) - 1:
        x = tf.nn.relu(x)
    return x

  def _mlp_step(self, real_batches):
    tf, config = self.tf, self.config
    gan, batch = config.gan, config.batch_size
    softplus = tf.nn.softplus
    def g_fn(z):
      return self._mlp(z, self.g_w, self.g_b)
    def d_fn(x):
      return self._mlp(x, self.d_w, self.d_b, 0.25)
    def noise():
      return self.rng.normal([batch, config.generator.noise_dim])

    def value_of(real, fake):
      out = d_fn(tf.concat([real, fake], 0))
      return -tf.reduce_mean(softplus(-out[:batch])) - tf.reduce_mean(softplus(out[batch:])), out

    def g_gradients(tape, g_loss, value):
      # eta |grad_D V|^2 on the generator: grad_D V with a graph (the tape is persistent).
      total = g_loss
      if gan.eta > 0:
        grads = tape.gradient(value, self.d_vars)
        total += gan.eta * tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])
      return tape.gradient(total, self.g_vars)

    simultaneous = gan.update == "simultaneous"
    for k in range(gan.n_disc - (1 if simultaneous else 0)):
      fake = g_fn(noise())
      with tf.GradientTape() as tape:
        value, _ = value_of(real_batches[k], fake)
      self.d_opt.apply(tape.gradient(-value, self.d_vars), self.d_vars)
    with tf.GradientTape(persistent=True) as tape:
      fake = g_fn(noise())
      value, out = value_of(real_batches[gan.n_disc - 1], fake)
      g_loss = -tf.reduce_mean(softplus(out[batch:]))  # minimax: G descends V
      if simultaneous:
        d_grads = tape.gradient(-value, self.d_vars)
      g_grads = g_gradients(tape, g_loss, value)
    del tape
    if simultaneous:
      self.d_opt.apply(d_grads, self.d_vars)
    self.g_opt.apply(g_grads, self.g_vars)
    return g_loss

  def _train_step(self, real_batches):
    if self.family == "conv7":
      return self._conv_step(real_batches)
    return self._mlp_step(real_batches)

  def step(self, real_batches):
    return self._step(real_batches)

  def concrete_graph(self):
    return self._step.get_concrete_function().graph


# ---------------------------------------------------------------------------------------------
# PyTorch (eager)


class TorchPeer:
  """The step in PyTorch eager mode: NCHW tensors, ``torch.optim`` optimisers, sparse particle
  gradients (``functional.embedding(..., sparse=True)``, as SGD on a particle table is written)."""

  def __init__(self, config, sample_shape, seed: int = 0, threads: int = 2):
    import torch  # pylint: disable=g-import-not-at-top
    from torch.nn import functional  # pylint: disable=g-import-not-at-top
    self.torch, self.nn_f = torch, functional
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    self.config = config
    self.family = _family(config)
    self.sample_shape = tuple(sample_shape)
    param = torch.nn.Parameter
    if self.family == "conv7":
      self.exact = config.discriminator.sn_norm == "exact"
      self.layers = []
      shapes, flat = conv7_shapes(self.sample_shape, config.discriminator.base_channels)
      for kernel, stride, c_in, c_out, in_hw, out_hw, pads in shapes:
        w = torch.empty(c_out, c_in, kernel, kernel)
        torch.nn.init.xavier_uniform_(w)
        u_shape = (1, c_out, *out_hw) if self.exact else (1, c_out)
        self.layers.append({"w": param(w), "b": param(torch.zeros(c_out)), "stride": stride,
                            "pads": pads, "in": (1, c_in, *in_hw), "u": torch.randn(u_shape)})
      dense = torch.empty(1, flat)
      torch.nn.init.xavier_uniform_(dense)
      self.dense, self.dense_b = param(dense), param(torch.zeros(1))
      self.dense_u = torch.randn(1, 1)
      self.d_params = [p for layer in self.layers for p in (layer["w"], layer["b"])] + [
          self.dense, self.dense_b]
      n = config.generator.n_particles
      self.particles = param(config.generator.particle_init_std *
                             torch.randn(n, int(np.prod(self.sample_shape))))
      self.g_params = [self.particles]
    else:
      def mlp(sizes):
        layers = []
        for a, b in itertools.pairwise(sizes):
          w = torch.empty(b, a)
          torch.nn.init.orthogonal_(w, gain=0.8)
          layers.append((param(w), param(torch.zeros(b))))
        return layers
      dim = self.sample_shape[0]
      self.g_layers = mlp([config.generator.noise_dim, *config.generator.hidden_units, dim])
      self.d_layers = mlp([dim, *config.discriminator.hidden_units, 1])
      self.g_params = [p for layer in self.g_layers for p in layer]
      self.d_params = [p for layer in self.d_layers for p in layer]
    self.d_opt = torch.optim.Adam(self.d_params, lr=config.d_lr,
                                  betas=(config.d_beta1, config.d_beta2), eps=1e-7)
    self.g_opt = (torch.optim.SGD(self.g_params, lr=config.g_lr) if config.g_optimizer == "sgd"
                  else torch.optim.Adam(self.g_params, lr=config.g_lr,
                                        betas=(config.g_beta1, config.g_beta2), eps=1e-7))

  # -- conv7 + particles ----------------------------------------------------------------------

  def _conv(self, x, w, stride, pads):
    top, bottom, left, right = pads
    if top == bottom and left == right:
      return self.nn_f.conv2d(x, w, stride=stride, padding=(top, left))
    return self.nn_f.conv2d(self.nn_f.pad(x, (left, right, top, bottom)), w, stride=stride)

  def _conv_adjoint(self, u, w, stride, pads, in_shape):
    top, bottom, left, right = pads
    padded = (in_shape[2] + top + bottom, in_shape[3] + left + right)
    extra = [padded[i] - ((u.shape[2 + i] - 1) * stride + w.shape[2 + i]) for i in range(2)]
    x = self.nn_f.conv_transpose2d(u, w, stride=stride, output_padding=tuple(extra))
    return x[:, :, top:top + in_shape[2], left:left + in_shape[3]]

  def _sn(self, w, state, key, apply, adjoint, update):
    torch = self.torch
    def normalize(x):
      return x / (torch.linalg.vector_norm(x) + 1e-12)
    u = state[key]
    if update:
      with torch.no_grad():
        v = normalize(adjoint(w, u))
        u = normalize(apply(w, v))
        state[key] = u
    with torch.no_grad():
      v = normalize(adjoint(w, u))
    return (u * apply(w, v)).sum()

  def _conv_d(self, x, training):
    torch, nn_f = self.torch, self.nn_f
    activation = {"elu": nn_f.elu, "softplus": nn_f.softplus, "tanh": torch.tanh}[
        self.config.discriminator.activation]
    for layer in self.layers:
      w, s, pads = layer["w"], layer["stride"], layer["pads"]
      if self.exact:
        def apply(k, v, s=s, pads=pads):
          return self._conv(v, k, s, pads)
        def adjoint(k, u, s=s, pads=pads, shape=layer["in"]):
          return self._conv_adjoint(
                    u, k, s, pads, shape)
      else:
        def apply(k, v):
          return v @ k.reshape(k.shape[0], -1).T
        def adjoint(k, u):
          return u @ k.reshape(k.shape[0], -1)
      sigma = self._sn(w, layer, "u", apply, adjoint, training)
      x = activation(self._conv(x, w / sigma, s, pads) + layer["b"][:, None, None])
    # TensorFlow flattens NHWC: the same dense layer sees the same feature order.
    x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    state = {"u": self.dense_u}
    sigma = self._sn(self.dense, state, "u", lambda k, v: v @ k.T, lambda k, u: u @ k, training)
    self.dense_u = state["u"]
    return self.config.discriminator.alpha * (x @ (self.dense / sigma).T + self.dense_b)

  def _to_nchw(self, images):
    return images.permute(0, 3, 1, 2)

  def _particles(self, index):
    rows = self.nn_f.embedding(index, self.particles, sparse=True)
    return self._to_nchw(rows.reshape(-1, *self.sample_shape))

  def _conv_step(self, real_batches):
    torch, config = self.torch, self.config
    gan, batch = config.gan, config.batch_size
    n = config.generator.n_particles
    for k in range(gan.n_disc):
      real = self._to_nchw(real_batches[k])
      with torch.no_grad():
        fake = self._particles(torch.randint(0, n, (batch,)))
      t = torch.rand(batch, 1, 1, 1)
      x_hat = (t * real + (1 - t) * fake).requires_grad_(True)
      out = self._conv_d(torch.cat([real, fake]), training=True)
      value = out[batch:].mean() - out[:batch].mean()
      phi = self._conv_d(x_hat, training=False)
      (grad,) = torch.autograd.grad(phi.sum(), x_hat, create_graph=True)
      penalty = (gan.output_penalty_weight * phi.square().mean() +
                 gan.gradient_penalty_weight * 0.5 * gan.kernel_sigma**2 *
                 grad.square().sum((1, 2, 3)).mean()) / (2 * gan.penalty_lambda)
      self.d_opt.zero_grad(set_to_none=True)
      (-value + penalty).backward()
      self.d_opt.step()
    index = (torch.randint(0, n, (gan.particle_batch,)) if gan.particle_batch
             else torch.arange(n))
    g_loss = self._conv_d(self._particles(index), training=False).mean()
    self.g_opt.zero_grad(set_to_none=True)
    g_loss.backward()  # also fills the discriminator's .grad: zeroed before its next step
    self.g_opt.step()
    return g_loss

  # -- nk_mlp + MLP generator -----------------------------------------------------------------

  def _mlp(self, x, layers, input_scale=1.0):
    x = x * input_scale
    for i, (w, b) in enumerate(layers):
      x = self.nn_f.linear(x, w, b)
      if i < len(layers) - 1:
        x = self.nn_f.relu(x)
    return x

  def _mlp_step(self, real_batches):
    torch, nn_f, config = self.torch, self.nn_f, self.config
    gan, batch = config.gan, config.batch_size
    def noise():
      return torch.randn(batch, config.generator.noise_dim)

    def value_of(real, fake):
      out = self._mlp(torch.cat([real, fake]), self.d_layers, 0.25)
      return -nn_f.softplus(-out[:batch]).mean() - nn_f.softplus(out[batch:]).mean(), out

    simultaneous = gan.update == "simultaneous"
    for k in range(gan.n_disc - (1 if simultaneous else 0)):
      with torch.no_grad():
        fake = self._mlp(noise(), self.g_layers)
      value, _ = value_of(real_batches[k], fake)
      self.d_opt.zero_grad(set_to_none=True)
      (-value).backward()
      self.d_opt.step()
    fake = self._mlp(noise(), self.g_layers)
    value, out = value_of(real_batches[gan.n_disc - 1], fake)
    g_loss = -nn_f.softplus(out[batch:]).mean()  # minimax: G descends V
    total = g_loss
    d_grads = None
    if gan.eta > 0 or simultaneous:
      d_grads = torch.autograd.grad(value, self.d_params, create_graph=gan.eta > 0)
      if gan.eta > 0:
        total = total + gan.eta * sum(g.square().sum() for g in d_grads)
    g_grads = torch.autograd.grad(total, self.g_params)
    if simultaneous:
      for p, g in zip(self.d_params, d_grads):
        p.grad = -g.detach()
      self.d_opt.step()
    for p, g in zip(self.g_params, g_grads):
      p.grad = g
    self.g_opt.step()
    return g_loss

  def step(self, real_batches):
    real_batches = self.torch.from_numpy(real_batches)
    if self.family == "conv7":
      return self._conv_step(real_batches)
    return self._mlp_step(real_batches)


# The ops whose FLOPs count: what FMA units compute (the profiler counts 2 per multiply-add).
FMA_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "BatchMatMulV2")


def flops_per_step(peer: TFGraphPeer) -> float:
  """FLOPs of one step's convolutions and matrix products (forward, gradients, second-order
  terms), counted by TensorFlow's profiler on the hand-written graph: the work the math needs,
  credited to every variant alike. Element-wise ops are not counted."""
  from tensorflow.python.profiler import model_analyzer  # pylint: disable=g-import-not-at-top
  from tensorflow.python.profiler import option_builder  # pylint: disable=g-import-not-at-top
  options = (option_builder.ProfileOptionBuilder(
      option_builder.ProfileOptionBuilder.float_operation())
             .account_displayed_op_only(False)
             .with_empty_output().build())
  options["account_type_regexes"] = [f"^{op}$" for op in FMA_OPS]
  stats = model_analyzer.profile(graph=peer.concrete_graph(), options=options)
  return float(stats.total_float_ops) if not math.isnan(stats.total_float_ops) else 0.0


def torch_flops_per_step(peer: TorchPeer, real_batches) -> float:
  """FLOPs of one step as the PyTorch peer executes it, counted by PyTorch's own
  ``torch.utils.flop_counter.FlopCounterMode``: the convolutions and matrix products of the
  forward passes, the gradients and the penalty's double backward, 2 per multiply-add as
  TensorFlow's profiler counts. Runs one step of ``peer``."""
  from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=g-import-not-at-top
  with FlopCounterMode(display=False) as counter:
    peer.step(real_batches)
  return float(counter.get_total_flops())


def conv7_forward_flops(sample_shape, base_channels: int, batch: int) -> float:
  """FLOPs of one forward pass of the conv7 discriminator on ``batch`` samples, by hand:
  ``2 k^2 c_in c_out h_out w_out`` per sample and convolution, and ``2 n`` for the final dense
  layer on the ``n`` flattened features (spectral normalisation's power iteration, a few
  matrix-vector products per layer and call, left out)."""
  layers, flat = conv7_shapes(sample_shape, base_channels)
  return float(batch * (sum(_conv_flops(layer) for layer in layers) + 2 * flat))


def _conv_flops(layer) -> float:
  """Forward FLOPs of one ``conv7_shapes`` layer on one sample: ``2 k^2 c_in c_out h w``."""
  kernel, _, c_in, c_out, _, (height, width), _ = layer
  return 2.0 * kernel * kernel * c_in * c_out * height * width


def chu_step_flops(sample_shape, base_channels: int, batch: int, n_disc: int,
                   particle_batch: int) -> float:
  """FLOPs of one step of Chu et al.'s GAN (workload A) by hand, counted as the profilers count
  (convolutions and matrix products, 2 per multiply-add), from ``F``, one forward pass of the
  conv7 discriminator per sample, and ``F1``, its first convolution's share. A convolution's
  input gradient and its kernel gradient each cost what its forward pass does. Per
  discriminator step of ``batch`` real and ``batch`` generated samples:

  - forward on real and fake (``2 B F``), on the interpolates (``B F``), and the input gradient
    at the interpolates that the penalty takes (``B F``, through every layer);
  - the backward pass of the loss: kernel gradients of the real/fake pass (``2 B F``) and input
    gradients to its second layer (``2 B (F - F1)``: the samples need none); through the
    penalty's input gradient, each transposed convolution's kernel and input gradients
    (``2 B F``), and through the interpolates' forward pass, which the activations' derivatives
    depend on, kernel and input gradients (``2 B F``).

  That is ``12 B F - 2 B F1``. The particle step: forward, input gradient to the particles and
  the discriminator's kernel gradients, which PyTorch's ``backward`` also fills (``3 P F``).
  Spectral normalisation's matrix-vector products and the last dense layer are left out."""
  first = _conv_flops(conv7_shapes(sample_shape, base_channels)[0][0])
  forward = conv7_forward_flops(sample_shape, base_channels, 1)
  return n_disc * batch * (12 * forward - 2 * first) + 3 * particle_batch * forward
