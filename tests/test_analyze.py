"""analyze.py on tiny trained runs: outputs, TensorBoard, 1 vs 4 devices,
and one-line errors."""

import csv
import json
import shutil

import jax
from jax.flatten_util import ravel_pytree
import numpy as np
import optax
import pytest
from tensorboard.backend.event_processing import event_accumulator

from analysis import measure
from analysis import parts
from analysis import training
import analyze
from configs import default
from configuration import config_util
from runs import run_state
from runtime import parallel
from tests import analysis_setup
from tests.conftest import run_python
from tests.conftest import small_config
import train

# Small but complete: every measurement runs, in seconds.
SETTINGS = dict(
    num_examples=512,
    batch_size=256,
    top_k=3,
    lanczos_iterations=20,
    slq_iterations=20,
    slq_probes=4,
    hutchinson_probes=10,
    m=32,
    ascent_steps=2,
    noise_samples=4,
    density_points=200,
    landscape_points=5,
    landscape_2d_points=5,
    interpolation_points=5,
)
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def settings_config():
  """(the --config flag's value, its overrides) for SETTINGS."""
  config = default.get_config()
  for key, value in SETTINGS.items():
    config.analysis[key] = value
  return config, {f'analysis.{k}': v for k, v in SETTINGS.items()}


def run_analysis(workdir, interpolate_to=None):
  return analyze.run(
      str(workdir),
      analyze.analysis_config(str(workdir), *settings_config()),
      interpolate_to and str(interpolate_to),
  )


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """A one-epoch SGD run of two replicas (seeds 0 and 1), a SAM run of the
  same MLP that measures itself while training, and analyze.run's results
  on the SGD run's replicas, interpolating each to the SAM run."""
  root = tmp_path_factory.mktemp('runs')
  train.train_and_evaluate(
      small_config(num_epochs=1, num_replicas=2), str(root / 'sgd')
  )
  sam_config = small_config(
      optimizer='sam', num_epochs=1, analysis_every_epochs=1
  )
  sam_config.analysis.update(SETTINGS)
  train.train_and_evaluate(
      sam_config,
      str(root / 'sam'),
      evaluators=training.training_evaluators(sam_config),
  )
  return root, run_analysis(root / 'sgd', root / 'sam')


@pytest.mark.parametrize('replica', [0, 1])
def test_outputs_are_consistent_and_logged_to_tensorboard(runs, replica):
  root, all_results = runs
  results = all_results[replica]
  logdir = root / 'sgd' / f'replica_{replica}'
  outdir = logdir / 'analysis'
  assert json.loads((outdir / 'analysis.json').read_text()) == json.loads(
      json.dumps(results)
  )
  for figure in (
      'spectral_density',
      'landscape_1d',
      'landscape_2d_contour',
      'landscape_2d_surface',
      'interpolation',
  ):
    assert (outdir / f'{figure}.png').read_bytes()[:8] == PNG_SIGNATURE
  assert results['replica'] == replica and results['step'] == 40
  assert results['devices'] == 1
  assert (
      results['num_params']
      == results['num_free_params']
      == (40 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10)
  )
  # The replicas are different networks (seeds 0 and 1).
  assert results['loss'] != all_results[1 - replica]['loss']

  hessian, sharpness = results['hessian'], results['sharpness']
  top = hessian['top_eigenvalues']
  assert len(top) == 3 and top == sorted(top, reverse=True)
  assert max(hessian['top_eigenvalue_residuals']) < 1e-2 * top[0]
  assert hessian['most_negative_eigenvalue'] < top[-1]
  assert hessian['eigenvalue_ratio'] == pytest.approx(
      top[0] / abs(hessian['most_negative_eigenvalue'])
  )
  # SLQ's first moment and Hutchinson both estimate tr(H) / n.
  n = results['num_free_params']
  assert abs(hessian['moments'][0] * n - hessian['trace']) < 4 * np.hypot(
      hessian['moments_stderr'][0] * n, hessian['trace_stderr']
  )
  # The multi-step ascent's first iterate is the one-step perturbation.
  assert sharpness['multi_step'] >= sharpness['one_step'] > 0
  assert sharpness['m_sharpness'] > 0 and sharpness['adaptive'] > 0

  # Every grid passes through the trained weights at its centre.
  line = np.load(outdir / 'landscape_1d.npz')
  plane = np.load(outdir / 'landscape_2d.npz')
  path = np.load(outdir / 'interpolation.npz')
  np.testing.assert_allclose(line['alphas'], [-1, -0.5, 0, 0.5, 1])
  np.testing.assert_allclose(path['ts'], [-0.5, 0, 0.5, 1, 1.5])
  assert plane['loss'].shape == (5, 5)
  for loss in (line['loss'][2], plane['loss'][2, 2], path['loss'][1]):
    assert loss == pytest.approx(results['loss'], rel=1e-5)
  density = np.load(outdir / 'spectral_density.npz')
  assert np.trapezoid(
      density['density'], density['eigenvalues']
  ) == pytest.approx(1, abs=1e-2)

  assert analysis_scalars(logdir) == pytest.approx(
      {
          'hessian/top_eigenvalue': top[0],
          'hessian/trace': hessian['trace'],
          'hessian/most_negative_eigenvalue': hessian[
              'most_negative_eigenvalue'
          ],
          'hessian/eigenvalue_ratio': hessian['eigenvalue_ratio'],
          **{
              f'hessian/moment_{k}': m
              for k, m in enumerate(hessian['moments'], start=1)
          },
          **{
              f'sharpness/{k}': v
              for k, v in sharpness.items()
              if not k.endswith('_stderr')
          },
      }
  )


def analysis_scalars(logdir):
  """The scalars analyze.py logged to TensorBoard for the run whose logs
  are in `logdir`: in their own TensorBoard run, logdir/analysis, apart from
  training's; each once, at step 40 (the run's last)."""
  events = event_accumulator.EventAccumulator(
      str(logdir / 'analysis'), size_guidance={event_accumulator.SCALARS: 0}
  )
  events.Reload()
  scalars = {}
  for tag in events.Tags()['scalars']:
    [event] = events.Scalars(tag)
    assert event.step == 40
    scalars[tag] = event.value
  return scalars


def test_the_top_eigenvalues_and_trace_alone(runs, tmp_path):
  # slq_probes=0 and most_negative_eigenvalue=False: the same top
  # eigenvalues and trace as the full analysis (same probes and start
  # vector, checked to the same tolerance), nothing else of the Hessian.
  root, all_results = runs
  workdir = tmp_path / 'sgd'
  shutil.copytree(
      root / 'sgd',
      workdir,
      ignore=shutil.ignore_patterns('analysis', 'events.*'),
  )
  flag_config, overrides = settings_config()
  flag_config.analysis.update(
      parts=('hessian',), slq_probes=0, most_negative_eigenvalue=False
  )
  overrides.update(
      {
          'analysis.parts': ('hessian',),
          'analysis.slq_probes': 0,
          'analysis.most_negative_eigenvalue': False,
      }
  )
  [alone, _] = analyze.run(
      str(workdir),
      analyze.analysis_config(str(workdir), flag_config, overrides),
  )
  full = all_results[0]['hessian']
  assert set(alone['hessian']) == {
      'top_eigenvalues',
      'top_eigenvalue_residuals',
      'lanczos_steps',
      'trace',
      'trace_stderr',
      'trace_probes',
  }
  assert alone['hessian']['trace'] == full['trace']
  assert alone['hessian']['lanczos_steps'] <= full['lanczos_steps']
  np.testing.assert_allclose(
      alone['hessian']['top_eigenvalues'], full['top_eigenvalues'], rtol=1e-3
  )
  assert set(alone['seconds']) == {'metrics', 'eigenvalues', 'trace'}
  outdir = workdir / 'replica_0' / 'analysis'
  assert sorted(
      p.name for p in outdir.iterdir() if not p.name.startswith('events.')
  ) == ['analysis.json']
  assert set(analysis_scalars(workdir / 'replica_0')) == {
      'hessian/top_eigenvalue',
      'hessian/trace',
  }


def test_a_new_part_is_one_registered_object(runs, tmp_path, monkeypatch):
  # A part that measures the weights' norm: registered, it is validated,
  # measured, written to analysis.json, logged and drawn with no other edit.
  root, _ = runs
  workdir = tmp_path / 'sgd'
  shutil.copytree(
      root / 'sgd',
      workdir,
      ignore=shutil.ignore_patterns('analysis', 'events.*'),
  )
  drawn = []
  norm = parts.Part(
      'weight_norm',
      measure=lambda analyzer, state, seconds: (
          {'l2': float(optax.global_norm(state.params))},
          {'weight_norm': {'l2': np.ones(1)}},
      ),
      scalars=lambda results: {'weight_norm/l2': results['l2']},
      plot=lambda outdir, arrays, name: drawn.append(
          (name, 'weight_norm' in arrays)
      ),
  )
  monkeypatch.setitem(parts.PARTS, 'weight_norm', norm)
  flag_config, overrides = settings_config()
  flag_config.analysis.parts = ('weight_norm',)
  overrides['analysis.parts'] = ('weight_norm',)
  [first, _] = analyze.run(
      str(workdir),
      analyze.analysis_config(str(workdir), flag_config, overrides),
  )
  _, state, _ = run_state.load_checkpoint(workdir)
  expected = float(
      np.linalg.norm(ravel_pytree(parallel.replica(state, 0).params)[0])
  )
  assert first['weight_norm']['l2'] == pytest.approx(expected, rel=1e-5)
  assert 'hessian' not in first
  assert analysis_scalars(workdir / 'replica_0') == {
      'weight_norm/l2': pytest.approx(expected, rel=1e-5)
  }
  assert drawn == [('sgd, replica 0', True), ('sgd, replica 1', True)]
  assert (workdir / 'replica_0' / 'analysis' / 'weight_norm.npz').exists()


def test_a_runs_own_analysis_block_is_the_base_of_its_analysis(runs):
  # The SAM run trained with SETTINGS as its analysis block.
  root, _ = runs
  flag_config = default.get_config()
  config = analyze.analysis_config(str(root / 'sam'), flag_config, {})
  assert (
      config.analysis.num_examples
      == SETTINGS['num_examples']
      != (flag_config.analysis.num_examples)
  )
  flag_config.analysis.top_k = 2
  config = analyze.analysis_config(
      str(root / 'sam'), flag_config, {'analysis.top_k': 2}
  )
  assert config.analysis.top_k == 2
  assert config.analysis.num_examples == SETTINGS['num_examples']


def test_training_logs_the_exact_top_eigenvalue(runs):
  root, _ = runs
  summary = json.loads((root / 'sam' / 'summary.json').read_text())
  [record] = summary['history']
  assert record['analysis/seconds'] > 0
  assert record['sharpness/one_step'] > 0
  # The dense Hessian of the final weights' loss on the analysis subset,
  # computed without the framework's HVPs.
  config, state, _ = run_state.load_checkpoint(root / 'sam')
  analyzer = measure.Analyzer(config, parallel.create_mesh())
  x0, _ = ravel_pytree(state.params)
  exact = np.linalg.eigvalsh(
      np.asarray(
          jax.hessian(
              analysis_setup.flat_loss(
                  state, *analysis_setup.subset_arrays(analyzer)
              )
          )(x0),
          np.float64,
      )
  )
  assert record['hessian/top_eigenvalue'] == pytest.approx(exact[-1], rel=1e-3)
  # Hutchinson with 10 probes: a rough estimate, but of the right trace.
  assert record['hessian/trace'] == pytest.approx(exact.sum(), rel=0.5)
  events = event_accumulator.EventAccumulator(
      str(root / 'sam'), size_guidance={event_accumulator.SCALARS: 0}
  )
  events.Reload()
  [event] = events.Scalars('hessian/top_eigenvalue')
  assert event.step == 40 and event.value == pytest.approx(
      record['hessian/top_eigenvalue']
  )


@pytest.mark.slow
def test_four_devices_agree_with_one(runs, tmp_path):
  root, all_results = runs
  workdir = tmp_path / 'sgd'
  shutil.copytree(
      root / 'sgd',
      workdir,
      ignore=shutil.ignore_patterns('analysis', 'events.*'),
  )
  run_python(
      [
          'analyze.py',
          f'--workdir={workdir}',
          *(f'--config.analysis.{k}={v}' for k, v in SETTINGS.items()),
      ],
      devices=4,
      check=True,
  )
  for replica, one in enumerate(all_results):
    outdir = workdir / f'replica_{replica}' / 'analysis'
    four = json.loads((outdir / 'analysis.json').read_text())
    assert four['devices'] == 4
    # Same examples, probes and directions; only float summation differs.
    np.testing.assert_allclose(
        four['hessian']['top_eigenvalues'],
        one['hessian']['top_eigenvalues'],
        rtol=1e-4,
    )
    for key in ('most_negative_eigenvalue', 'trace'):
      assert four['hessian'][key] == pytest.approx(
          one['hessian'][key], rel=1e-3
      ), key
    np.testing.assert_allclose(
        four['hessian']['moments'], one['hessian']['moments'], rtol=1e-3
    )
    # Sharpness is a difference of losses: its rounding is that of a loss.
    for key, value in one['sharpness'].items():
      assert four['sharpness'][key] == pytest.approx(
          value, rel=1e-3, abs=1e-5 * one['loss']
      ), key
    assert four['loss'] == pytest.approx(one['loss'], rel=1e-5)
    np.testing.assert_allclose(
        np.load(outdir / 'landscape_2d.npz')['loss'],
        np.load(
            root
            / 'sgd'
            / f'replica_{replica}'
            / 'analysis'
            / 'landscape_2d.npz'
        )['loss'],
        rtol=1e-5,
    )


def test_bad_runs_and_settings_are_refused_with_one_line(runs, tmp_path):
  root, _ = runs
  with pytest.raises(
      config_util.ConfigError,
      match='is not a run directory: it has no config.json',
  ):
    run_analysis(tmp_path / 'nothing')
  (tmp_path / 'fresh').mkdir()
  shutil.copy(root / 'sgd' / 'config.json', tmp_path / 'fresh')
  with pytest.raises(config_util.ConfigError, match='fresh has no checkpoint'):
    run_analysis(tmp_path / 'fresh')
  flag_config, overrides = settings_config()
  with pytest.raises(
      config_util.ConfigError,
      match=r'--config.seed cannot be set: analyze.py takes '
      r'only --config.analysis.\* settings',
  ):
    analyze.analysis_config(
        str(root / 'sgd'), flag_config, {'seed': 1, **overrides}
    )

  def analysis_config(**analysis):
    flag_config, overrides = settings_config()
    flag_config.analysis.update(analysis)
    overrides.update({f'analysis.{k}': v for k, v in analysis.items()})
    return analyze.analysis_config(str(root / 'sgd'), flag_config, overrides)

  with pytest.raises(
      config_util.ConfigError,
      match='analysis.num_examples 500 '
      'is not a multiple of analysis.batch_size 256',
  ):
    analyze.run(str(root / 'sgd'), analysis_config(num_examples=500))
  with pytest.raises(
      config_util.ConfigError,
      match=r'analysis.parts must name '
      'some of hessian, sharpness, landscape',
  ):
    analyze.run(
        str(root / 'sgd'), analysis_config(parts=('hessian', 'curvature'))
    )
  with pytest.raises(
      config_util.ConfigError,
      match=r'analysis.slq_probes must '
      r'be 0 \(no spectral density or moments\) or >= 2',
  ):
    analyze.run(
        str(root / 'sgd'), analysis_config(parts=('hessian',), slq_probes=1)
    )
  # More examples than the run trained on (MNIST-1D: 4,000): what to set.
  with pytest.raises(
      config_util.ConfigError,
      match=r'analysis.num_examples asks '
      r'for 4096 examples, but the training split holds 4000: '
      r'set --config.analysis.num_examples=3840 \(a multiple '
      r'of analysis.batch_size 256\)',
  ):
    analyze.run(str(root / 'sgd'), analysis_config(num_examples=4096))


def test_a_sweep_is_analyzed_run_by_run_then_reported_against_width(tmp_path):
  # Two widths of a one-epoch sweep and a run that did not finish.
  for width in (8, 32):
    train.train_and_evaluate(
        small_config(num_epochs=1, num_neurons=(width,)),
        str(tmp_path / f'num_neurons={width}'),
    )
  (tmp_path / 'unfinished').mkdir()
  shutil.copy(
      tmp_path / 'num_neurons=8' / 'config.json', tmp_path / 'unfinished'
  )
  command = [
      'analyze.py',
      f'--workdir={tmp_path}',
      "--config.analysis.parts=('hessian',)",
      *(f'--config.analysis.{k}={v}' for k, v in SETTINGS.items()),
  ]
  first = run_python(command, check=True)
  assert f'skipped (missing): {tmp_path / "unfinished"}' in first.stdout
  for width in (8, 32):
    analysis = tmp_path / f'num_neurons={width}' / 'analysis'
    results = json.loads((analysis / 'analysis.json').read_text())
    # Only the Hessian was measured.
    assert 'hessian' in results and 'sharpness' not in results
    assert sorted(
        p.name for p in analysis.iterdir() if not p.name.startswith('events.')
    ) == ['analysis.json', 'spectral_density.npz', 'spectral_density.png']
  # Analyzed already with these settings: nothing is measured again.
  second = run_python(command, check=True)
  assert second.stdout.count('skipped (analyzed)') == 2
  # A narrower analysis of one run adds its part; the Hessian measured
  # before stays, with the step and settings it was measured with, and
  # TensorBoard shows each measurement once.
  narrow = tmp_path / 'num_neurons=8'
  hessian_before = json.loads(
      (narrow / 'analysis' / 'analysis.json').read_text()
  )
  run_python(
      [
          'analyze.py',
          f'--workdir={narrow}',
          "--config.analysis.parts=('sharpness',)",
          *command[3:],
      ],
      check=True,
  )
  results = json.loads((narrow / 'analysis' / 'analysis.json').read_text())
  assert results['hessian'] == hessian_before['hessian']
  assert results['parts']['hessian'] == hessian_before['parts']['hessian']
  assert results['parts']['sharpness']['settings']['parts'] == ['sharpness']
  assert 'one_step' in results['sharpness']
  scalars = analysis_scalars(narrow)
  assert scalars['hessian/trace'] == pytest.approx(results['hessian']['trace'])
  assert 'sharpness/one_step' in scalars
  # The whole sweep with both parts: num_neurons=8 has both already.
  third = run_python(
      [
          *command[:2],
          "--config.analysis.parts=('hessian','sharpness')",
          *command[3:],
      ],
      check=True,
  )
  assert third.stdout.count('skipped (analyzed)') == 1
  assert f'skipped (analyzed): {narrow}' in third.stdout

  # A width trained later and not analyzed: reported without Hessian.
  train.train_and_evaluate(
      small_config(num_epochs=1, num_neurons=(16,)),
      str(tmp_path / 'num_neurons=16'),
  )
  report = run_python(['report.py', str(tmp_path)], check=True)
  assert 'hessian_vs_params.png' in report.stdout
  with (tmp_path / 'results.csv').open() as f:
    rows = {row['num_neurons']: row for row in csv.DictReader(f)}
  assert rows['(16)']['hessian_trace_mean'] == ''
  for width in (8, 32):
    measured = json.loads(
        (
            tmp_path / f'num_neurons={width}' / 'analysis' / 'analysis.json'
        ).read_text()
    )['hessian']
    row = rows[f'({width})']
    assert float(row['hessian_top_eigenvalue_mean']) == pytest.approx(
        measured['top_eigenvalues'][0]
    )
    assert float(row['hessian_trace_mean']) == pytest.approx(measured['trace'])
    m1, m2 = measured['moments'][:2]
    assert float(row['hessian_spread_mean']) == pytest.approx(m2 / m1**2)
    # The settings each Hessian was measured with.
    assert row['hessian_settings'] == (
        'num_examples=512, seed=0, lanczos_iterations=20, '
        'lanczos_tolerance=0.001, hutchinson_probes=10, trace_tolerance=0.01, '
        'slq_probes=4, slq_iterations=20'
    )


def test_only_runs_of_one_model_and_dataset_are_interpolated():
  config = analysis_setup.tiny_config()
  narrow = analysis_setup.tiny_state(config)
  wide = analysis_setup.tiny_state(small_config())
  analyze.check_interpolable(
      'a',
      config,
      [narrow] * 2,
      'b',
      config,
      [analysis_setup.tiny_state(config, seed=1)],
  )
  for other_config, others, reason in (
      (config, [wide], 'they differ in model or dataset'),
      (
          small_config(dataset='fashion_mnist'),
          [narrow],
          'they differ in model or dataset',
      ),
      (config, [narrow] * 3, '3 replicas cannot be paired with 2'),
  ):
    with pytest.raises(
        config_util.ConfigError,
        match=f'cannot interpolate between a and b: {reason}',
    ):
      analyze.check_interpolable(
          'a', config, [narrow] * 2, 'b', other_config, others
      )


def test_the_cli_prints_one_line_errors(tmp_path):
  result = run_python(['analyze.py', f'--workdir={tmp_path}'])
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: {tmp_path} is not a run directory: it has no config.json'
  )
