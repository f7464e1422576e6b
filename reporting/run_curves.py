"""The report's figures of each run's own curves: its training loss at
the log-spaced evaluated steps (with the fitted linear rates) and the
function a network of one input learned, drawn from what the runs'
summaries and analyses hold."""

from collections.abc import Sequence
import pathlib

import numpy as np

from reporting import tables
from reporting.figures import new_figure
from reporting.figures import setting_title
from reporting.stats import Setting
from reporting.stats import XAxis


def plot_loss_curves(
    settings: Sequence[Setting],
    curve_keys: Sequence[str],
    window: tuple[int, int],
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """Each run's training loss at its evaluated steps (summary.json's
  step_evals; log y, so linear convergence is a straight line), a colour
  per setting, dashed for SGD; the legend gives the setting's mean fitted
  linear rate (reporting.rates, the runs' 'linear_rate') over `window`,
  drawn dotted."""
  first, last = window
  fig, ax = new_figure(
      [
          'Training loss at the log-spaced evaluated steps (config.'
          'log_spaced_evals), one line per run; r: the linear rate (minus '
          'the slope of ln loss per step) fitted between the dotted steps, '
          'mean over seeds.',
          *notes,
      ]
  )
  for index, setting in enumerate(settings):
    label = ', '.join(
        filter(
            None,
            [
                setting.optimizer.upper(),
                tables.label(setting.config, curve_keys),
            ],
        )
    )
    rate = np.mean([run['linear_rate'] for run in setting.runs])
    for run_index, run in enumerate(setting.runs):
      steps, losses = zip(
          *((r['step'], r['train_loss']) for r in run['step_evals'])
      )
      ax.plot(
          steps,
          losses,
          color=f'C{index}',
          linestyle='--' if setting.optimizer == 'sgd' else '-',
          alpha=0.8,
          label=f'{label}: r = {rate:.3g}' if run_index == 0 else None,
      )
  for step in window:
    ax.axvline(step, color='grey', linestyle=':')
  ax.set_yscale('log')
  ax.set_xlabel('step')
  ax.set_ylabel('training loss')
  ax.set_title(
      f'{setting_title(settings)}: training loss, rates over {first}:{last}'
  )
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize='small')
  fig.savefig(path, dpi=150)


def plot_functions(
    settings: Sequence[Setting],
    axis: XAxis,
    notes: Sequence[str],
    path: pathlib.Path,
) -> None:
  """The functions the runs learned (analyze.py's part function_1d), a
  panel per value of `axis` (e.g. the width), a colour per optimizer and a
  line per seed, over the training examples."""
  values = sorted({axis.value(s) for s in settings})
  fig, axes = new_figure(
      [
          "Each run's network on a grid over its training inputs (analyze.py, "
          'part function_1d), one line per seed; dots: the training examples.',
          *notes,
      ],
      panels=len(values),
  )
  optimizers = sorted({s.optimizer for s in settings}, reverse=True)
  for ax, value in zip(np.atleast_1d(axes), values):
    for setting in settings:
      if axis.value(setting) != value:
        continue
      color = f'C{optimizers.index(setting.optimizer)}'
      for index, run in enumerate(setting.runs):
        arrays = np.load(run['function_1d_file'])
        ax.plot(
            arrays['x'],
            arrays['prediction'],
            color=color,
            alpha=0.7,
            linestyle='--' if setting.optimizer == 'sgd' else '-',
            label=setting.optimizer.upper() if index == 0 else None,
        )
    ax.scatter(
        arrays['train_x'], arrays['train_y'], color='black', zorder=3, s=12
    )
    # The range of the targets, not of extrapolations beyond the data.
    low, high = arrays['train_y'].min(), arrays['train_y'].max()
    ax.set_ylim(low - 0.5 * (high - low), high + 0.5 * (high - low))
    ax.set_title(f'{axis.variable} = {tables.format_value(value)}')
    ax.set_xlabel('x')
    ax.set_ylabel('f(x)')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
  fig.savefig(path, dpi=150)
