"""Your own networks with Chu et al.'s penalty and gamma* (README, "Your own networks").

    python examples/own_networks.py   # about 2 minutes on 2 CPU cores

Everything below the docstring is the README's block, line for line (tests/test_examples.py
checks that, and runs it with STEPS = 4).
"""
import tfsmooth  # first: TensorFlow then starts without its C++ start-up lines
import keras

STEPS = 300  # generator steps (2 batches each)
OUT = "out/own_networks"

# Your generator: a small DCGAN-style network from 64-d noise to 28x28x1 images in [-1, 1].
generator = keras.Sequential([
    keras.Input((64,)),
    keras.layers.Dense(7 * 7 * 64), keras.layers.BatchNormalization(), keras.layers.ReLU(),
    keras.layers.Reshape((7, 7, 64)),
    keras.layers.Conv2DTranspose(32, 4, strides=2, padding="same"),
    keras.layers.BatchNormalization(), keras.layers.ReLU(),
    keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh"),
])
# Your discriminator, from tfsmooth's bounded layers: spectrally normalised convolutions (by the
# convolution's true operator norm), ELU, and a final scale alpha = 1.
discriminator = keras.Sequential([
    keras.Input((28, 28, 1)),
    tfsmooth.SNConv2D(32, 4, strides=2), tfsmooth.SmoothActivation("elu"),
    tfsmooth.SNConv2D(64, 4, strides=2), tfsmooth.SmoothActivation("elu"),
    keras.layers.Flatten(), tfsmooth.SNDense(1), tfsmooth.AlphaScale(1.0),
])
tfsmooth.converge_spectral_norms(discriminator)

# Chu et al.'s truncated RKHS penalty, and the generator's learning rate in units of gamma*
# (Theorem 1). A and B bound how your generator's samples move with its weights (conditions G1,
# G2); they are not known in closed form for a DCGAN, so state yours: here A = B = 1.
penalty = tfsmooth.RKHSPenalty(penalty_lambda=1.0, kernel_sigma=1.0)
g_lr, constants = tfsmooth.generator_learning_rate(discriminator, 1e-3, penalty,
                                                   generator_a=1.0, generator_b=1.0)
print(f"alpha {constants.alpha:.3g}, beta1 {constants.beta1:.3g}, beta2 {constants.beta2:.3g}, "
      f"gamma* {constants.gamma_star:.4g}, generator lr {g_lr:.3g}")

gan = tfsmooth.SmoothGAN(generator, discriminator, loss="indicator", penalty=penalty, n_disc=2)
gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(g_lr, beta_1=0.5))
mnist = tfsmooth.get_provider("mnist")  # offline; plain batches (64, 28, 28, 1) in [-1, 1]
gan.fit(mnist.batches(64).take(2 * STEPS), epochs=1,  # 2 batches per step: n_disc = 2
        callbacks=[keras.callbacks.TensorBoard(f"{OUT}/logs")])
generator.export(f"{OUT}/generator", verbose=False)  # a SavedModel: noise (None, 64) -> images
