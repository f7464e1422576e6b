"""PNG figures of the analysis: line, contour, surface and density plots.

Uses matplotlib's object-oriented API (`Figure`, no pyplot), so nothing
depends on a display or on global plotting state. matplotlib is imported
with the first figure: an analysis that draws none (the Hessian's scalars
alone) does not pay for it (about 0.4 s).
"""

from collections.abc import Mapping
import textwrap
from typing import TYPE_CHECKING

from etils import epath
import numpy as np

if TYPE_CHECKING:
  from matplotlib.figure import Figure

_DPI = 100
# Characters per line of titles and labels: run names can be long
# (sweep.py names runs by their overrides).
_WRAP = 55


def _label(axes, title: str, **labels: str) -> None:
  """Sets the title and axis labels, wrapped to fit the figure."""
  axes.set_title(textwrap.fill(title, _WRAP), fontsize=9)
  for name, text in labels.items():
    getattr(axes, f'set_{name}')(textwrap.fill(text, _WRAP), fontsize=9)


def _figure(width: float, height: float) -> 'Figure':
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  return Figure(figsize=(width, height))


def _save(figure: 'Figure', path: epath.Path) -> None:
  figure.tight_layout()
  with path.open('wb') as f:
    figure.savefig(f, format='png', dpi=_DPI)


def lines(
    path: epath.Path,
    xs: np.ndarray,
    series: Mapping[str, np.ndarray],
    xlabel: str,
    ylabel: str,
    title: str,
    log_y: bool = False,
) -> None:
  """One line per entry of `series` (label -> values at `xs`)."""
  figure = _figure(5, 3.5)
  axes = figure.add_subplot()
  for label, ys in series.items():
    axes.plot(xs, ys, label=label)
  if log_y:  # Six decades below the peak: the rest is smoothing's tails.
    axes.set_yscale('log')
    axes.set_ylim(bottom=1e-6 * max(np.max(ys) for ys in series.values()))
  _label(axes, title, xlabel=xlabel, ylabel=ylabel)
  if len(series) > 1:
    axes.legend()
  axes.grid(alpha=0.3)
  _save(figure, path)


def function_fit(
    path: epath.Path,
    xs: np.ndarray,
    prediction: np.ndarray,
    train_x: np.ndarray,
    train_y: np.ndarray,
    title: str,
) -> None:
  """A learned function of one input, with the training examples."""
  figure = _figure(5, 3.5)
  axes = figure.add_subplot()
  axes.plot(xs, prediction, label='network')
  axes.scatter(train_x, train_y, color='black', zorder=3, label='training')
  _label(axes, title, xlabel='x', ylabel='f(x)')
  axes.legend()
  axes.grid(alpha=0.3)
  _save(figure, path)


def contour(
    path: epath.Path,
    alphas: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray,
    title: str,
) -> None:
  """Filled contours of values[i, j] at (alphas[i], betas[j])."""
  figure = _figure(4.5, 4)
  axes = figure.add_subplot()
  filled = axes.contourf(alphas, betas, values.T, levels=30, cmap='viridis')
  axes.contour(
      alphas, betas, values.T, levels=15, colors='white', linewidths=0.4
  )
  figure.colorbar(filled, ax=axes)
  axes.plot([0], [0], 'r+')  # The trained weights.
  _label(axes, title, xlabel='alpha (direction 1)', ylabel='beta (direction 2)')
  axes.set_aspect('equal')
  _save(figure, path)


def surface(
    path: epath.Path,
    alphas: np.ndarray,
    betas: np.ndarray,
    values: np.ndarray,
    title: str,
) -> None:
  """3D surface of values[i, j] over the (alpha, beta) grid."""
  figure = _figure(5, 4)
  axes = figure.add_subplot(projection='3d')
  grid_alphas, grid_betas = np.meshgrid(alphas, betas, indexing='ij')
  axes.plot_surface(
      grid_alphas,
      grid_betas,
      values,
      cmap='viridis',
      linewidth=0,
      antialiased=True,
  )
  _label(axes, title, xlabel='alpha', ylabel='beta', zlabel='loss')
  _save(figure, path)
