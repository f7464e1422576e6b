r"""The gradient of one 3x3 convolution per ResNet-18 stage, three ways.

  python -m benchmarks.conv_gradients [--num_filters=16] [--batch_size=128] \
      [--output=conv_gradients.json]

Times d/d(x, w) of sum(conv(x, w)**2) on CPU, compiled with the options the
training step of a convolutional model gets (xla_cpu.compiler_options), for
each stage of the CIFAR ResNet-18 (width num_filters * 2**k on 32 / 2**k
pixels, and the stride-2 convolution that enters it):

* `xla`: lax.conv_general_dilated in the models' layout (NHWC, HWIO) and
  XLA's own gradient convolutions;
* `nchw`: the same convolution in PyTorch's layout (NCHW, OIHW);
* `im2col`: XLA's forward convolution with a hand-written gradient. The
  kernel gradient is one matmul, patches(x)^T dy, over the k*k shifted
  views of x; the input gradient is the forward convolution of dy with the
  flipped, transposed kernel at stride 1, and at stride 2 the matmul
  dy w^T scattered back onto the input with strided pads.

docs/benchmarks.md, "Convolutions on CPU", says what the figures showed.
"""

from collections.abc import Callable
import functools
import json
import time

from absl import app
from absl import flags
import jax
from jax import lax
import jax.numpy as jnp

from benchmarks import throughput
from runtime import xla_cpu

flags.DEFINE_integer('num_filters', 16, "The ResNet-18's width.")
flags.DEFINE_integer('batch_size', 128, 'Images per gradient.')
# --min_seconds (here per formulation and shape) and --output are
# throughput.py's.
flags.FLAGS.set_default('output', 'conv_gradients.json')
FLAGS = flags.FLAGS

Padding = tuple[tuple[int, int], tuple[int, int]]
Conv = Callable[[jax.Array, jax.Array, tuple[int, int], Padding], jax.Array]


def xla(
    x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Padding
) -> jax.Array:
  return lax.conv_general_dilated(
      x, w, strides, padding, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def nchw(
    x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Padding
) -> jax.Array:
  y = lax.conv_general_dilated(
      x.transpose(0, 3, 1, 2),
      w.transpose(3, 2, 0, 1),
      strides,
      padding,
      dimension_numbers=('NCHW', 'OIHW', 'NCHW'),
  )
  return y.transpose(0, 2, 3, 1)


def _padded_extent(size: int, padding: tuple[int, int]) -> int:
  return size + padding[0] + padding[1]


def _patches(
    x: jax.Array,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: Padding,
) -> jax.Array:
  """[N, Ho, Wo, kh * kw * C], ordered as an HWIO kernel's rows."""
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  n, hp, wp, c = xp.shape
  ho = (hp - kernel[0]) // strides[0] + 1
  wo = (wp - kernel[1]) // strides[1] + 1
  views = [
      lax.slice(
          xp,
          (0, i, j, 0),
          (n, i + strides[0] * (ho - 1) + 1, j + strides[1] * (wo - 1) + 1, c),
          (1, *strides, 1),
      )
      for i in range(kernel[0])
      for j in range(kernel[1])
  ]
  return jnp.concatenate(views, axis=-1)


def _input_gradient(
    dy: jax.Array,
    w: jax.Array,
    input_shape: tuple[int, ...],
    strides: tuple[int, int],
    padding: Padding,
) -> jax.Array:
  """d/dx of <dy, conv(x, w)>."""
  kh, kw, cin, cout = w.shape
  if strides == (1, 1):
    flipped = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    return xla(
        dy,
        flipped,
        (1, 1),
        (
            (kh - 1 - padding[0][0], kh - 1 - padding[0][1]),
            (kw - 1 - padding[1][0], kw - 1 - padding[1][1]),
        ),
    )
  n, ho, wo, _ = dy.shape
  dpatches = (dy.reshape(-1, cout) @ w.reshape(-1, cout).T).reshape(
      n, ho, wo, kh, kw, cin
  )
  hp = _padded_extent(input_shape[1], padding[0])
  wp = _padded_extent(input_shape[2], padding[1])
  zero = jnp.zeros((), dy.dtype)
  dx = jnp.zeros(input_shape, dy.dtype)
  for i in range(kh):
    for j in range(kw):
      # Back onto the padded input at (i, j) with the stride's gaps, then
      # the padding cropped (negative pads).
      dx += lax.pad(
          dpatches[:, :, :, i, j, :],
          zero,
          (
              (0, 0, 0),
              (
                  i - padding[0][0],
                  hp - i - strides[0] * (ho - 1) - 1 - padding[0][1],
                  strides[0] - 1,
              ),
              (
                  j - padding[1][0],
                  wp - j - strides[1] * (wo - 1) - 1 - padding[1][1],
                  strides[1] - 1,
              ),
              (0, 0, 0),
          ),
      )
  return dx


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def im2col(
    x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Padding
) -> jax.Array:
  return xla(x, w, strides, padding)


def _im2col_forward(x, w, strides, padding):
  return xla(x, w, strides, padding), (x, w)


def _im2col_backward(strides, padding, residuals, dy):
  x, w = residuals
  cout = w.shape[-1]
  patches = _patches(x, w.shape[:2], strides, padding)
  dw = patches.reshape(-1, patches.shape[-1]).T @ dy.reshape(-1, cout)
  return (
      _input_gradient(dy, w, x.shape, strides, padding),
      dw.reshape(w.shape),
  )


im2col.defvjp(_im2col_forward, _im2col_backward)

FORMULATIONS: dict[str, Conv] = {'xla': xla, 'nchw': nchw, 'im2col': im2col}


def gradient(
    conv: Conv,
    strides: tuple[int, int],
    padding: Padding,
    compiler_options: dict[str, str],
) -> Callable:
  """The jitted (dx, dw) of sum(conv(x, w)**2)."""

  def loss(x, w):
    return jnp.sum(conv(x, w, strides, padding) ** 2)

  return jax.jit(
      jax.grad(loss, argnums=(0, 1)), compiler_options=compiler_options
  )


def milliseconds(
    step: Callable, x: jax.Array, w: jax.Array, min_seconds: float
) -> float:
  """Wall time per call, after a call that compiles."""
  jax.block_until_ready(step(x, w))
  calls, start = 0, time.perf_counter()
  while calls == 0 or time.perf_counter() - start < min_seconds:
    out = step(x, w)
    calls += 1
  jax.block_until_ready(out)
  return (time.perf_counter() - start) / calls * 1e3


def main(argv):
  del argv
  options = xla_cpu.compiler_options(throughput.resnet_config('sgd'))
  padding = ((1, 1), (1, 1))
  results = []
  for stage in range(4):
    width, size = FLAGS.num_filters * 2**stage, 32 // 2**stage
    shapes = [(width, size, 1)]
    if stage:  # The stride-2 convolution that enters the stage.
      shapes.insert(0, (width // 2, 2 * size, 2))
    for in_channels, in_size, stride in shapes:
      x = jax.random.normal(
          jax.random.key(0), (FLAGS.batch_size, in_size, in_size, in_channels)
      )
      w = 0.1 * jax.random.normal(jax.random.key(1), (3, 3, in_channels, width))
      ms = {
          name: milliseconds(
              gradient(conv, (stride, stride), padding, options),
              x,
              w,
              FLAGS.min_seconds,
          )
          for name, conv in FORMULATIONS.items()
      }
      results.append(
          {
              'input': [FLAGS.batch_size, in_size, in_size, in_channels],
              'out_channels': width,
              'stride': stride,
              'milliseconds': ms,
              'over_xla': {k: v / ms['xla'] for k, v in ms.items()},
          }
      )
      print(json.dumps(results[-1]), flush=True)
  with open(FLAGS.output, 'w') as f:
    json.dump({'compiler_options': options, 'shapes': results}, f, indent=2)


if __name__ == '__main__':
  app.run(main)
