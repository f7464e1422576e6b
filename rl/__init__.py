"""Reinforcement learning: PPO (`ppo.py`) with any SAM variant on the PPO
loss, gymnax environments (`environments.py`), actor-critic networks
(`networks.py`). `rl_train.py` trains; a config with `environment` set is
a reinforcement-learning run (configs/cartpole_ppo.py)."""

import ml_collections

from configs import default
from configuration.config_util import require
import optimizers
from rl import environments
from rl import networks
import sam

# The config keys this package reads (tests/test_layering.py checks that
# every key has one owner).
CONFIG_KEYS = (
    'environment',
    'rl_network',
    'rl_width',
    'rl_num_envs',
    'rl_rollout_steps',
    'rl_env_steps_per_epoch',
    'rl_eval_episodes',
    'ppo_epochs',
    'ppo_minibatches',
    'ppo_gamma',
    'ppo_gae_lambda',
    'ppo_clip',
    'ppo_value_coef',
    'ppo_entropy_coef',
    'ppo_max_grad_norm',
)
# The width of the Nature CNN (the MLP's is the models' num_neurons).
WIDTH_KEYS = ('rl_width',)
# What else a reinforcement-learning run reads besides the optimizer's keys
# (optimizers.CONFIG_KEYS): SAM's (rho, the variant's own and its
# schedule), the replicas' and the loop's.
OTHER_KEYS = (
    'optimizer',
    'num_epochs',
    'seed',
    'num_replicas',
    'replica_rho',
    'replica_seeds',
    'checkpoints_to_keep',
    'compilation_cache_dir',
    'cpu_threads',
    'num_neurons',
    'rho',
    'sam_variant',
    'sam_rho_schedule',
    'sam_rho_min',
)


def read_keys(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The keys a reinforcement-learning run with `config` reads."""
  variant_keys = (
      sam.get(config.sam_variant).keys if config.optimizer == 'sam' else ()
  )
  return CONFIG_KEYS + OTHER_KEYS + optimizers.CONFIG_KEYS + tuple(variant_keys)


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for the first problem of a reinforcement-learning
  config (the optimizer's, SAM's and the replicas' keys are checked with
  the supervised ones)."""
  env = environments.make(config.environment)
  require(
      config.rl_network in networks.NETWORKS,
      f'rl_network must be one of {networks.NETWORKS}, got '
      f'{config.rl_network!r}',
  )
  require(
      config.rl_network != 'nature_cnn' or env.is_frames(),
      f'rl_network=nature_cnn takes frames; {config.environment} observes '
      f'vectors of shape {env.observation_shape}: use rl_network=mlp',
  )
  require(config.rl_width > 0, f'rl_width must be > 0, got {config.rl_width}')
  for key in (
      'rl_num_envs',
      'rl_rollout_steps',
      'ppo_epochs',
      'ppo_minibatches',
      'rl_eval_episodes',
  ):
    require(config[key] >= 1, f'{key} must be >= 1, got {config[key]}')
  batch = config.rl_num_envs * config.rl_rollout_steps
  require(
      config.rl_env_steps_per_epoch % batch == 0
      and config.rl_env_steps_per_epoch > 0,
      f'rl_env_steps_per_epoch ({config.rl_env_steps_per_epoch}) must be a '
      f'positive multiple of a rollout, rl_num_envs x rl_rollout_steps = '
      f'{batch}',
  )
  require(
      batch % config.ppo_minibatches == 0,
      f'ppo_minibatches={config.ppo_minibatches} must divide a rollout of '
      f'{batch} steps',
  )
  for key, low, high in (
      ('ppo_gamma', 0.0, 1.0),
      ('ppo_gae_lambda', 0.0, 1.0),
  ):
    require(
        low <= config[key] <= high,
        f'{key} must be in [{low}, {high}], got {config[key]}',
    )
  for key in ('ppo_clip', 'ppo_max_grad_norm'):
    require(config[key] > 0, f'{key} must be > 0, got {config[key]}')
  for key in ('ppo_value_coef', 'ppo_entropy_coef'):
    require(config[key] >= 0, f'{key} must be >= 0, got {config[key]}')
  if config.optimizer == 'sam':
    variant = sam.get(config.sam_variant)
    require(
        not variant.per_example,
        f"sam_variant={variant.name} works on the batch's examples "
        '(their losses or predictions), which the PPO loss does not offer',
    )
    require(
        not variant.normalization_only,
        f'sam_variant={variant.name} perturbs normalization layers, which '
        "the agents' networks do not have",
    )
  # A key the run would ignore, set away from its default, is a mistake.
  defaults = default.get_config()
  read = set(read_keys(config))
  plain = lambda value: (
      value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  )
  ignored = sorted(
      key
      for key in config.keys()
      if key not in read and plain(config[key]) != plain(defaults[key])
  )
  require(
      not ignored,
      f'environment={config.environment} trains an agent, which does not '
      f'read {", ".join(ignored)}; leave them at their defaults',
  )
