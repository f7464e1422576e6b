"""Generic config checks with one-line errors: ConfigError, unknown keys
(with suggestions) and value types. Light to import (no JAX, no data), for
the entry points and configuration/validate.py alike."""

import difflib
from typing import Any

import ml_collections


class ConfigError(ValueError):
  """A config or workdir that cannot be trained; the message says why."""


def require(condition: bool, message: str) -> None:
  """Raises ConfigError(message) unless `condition`."""
  if not condition:
    raise ConfigError(message)


def _flat_keys(
    config: ml_collections.ConfigDict, prefix: str = ''
) -> list[str]:
  """Every key of `config`, nested ones as 'analysis.top_k'."""
  keys = []
  for key, value in config.items():
    keys.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      keys += _flat_keys(value, f'{prefix}{key}.')
  return keys


def missing_values(
    config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict
) -> list[str]:
  """The keys a config file leaves to its user: set to an unset placeholder
  (config_dict.placeholder(T), None) where the reference config
  (configs/default.py) has a value, e.g. a fine-tuning config's init_from.
  """
  return [
      key
      for key in config.keys()
      if config[key] is None and reference.get(key) is not None
  ]


def unknown_key_error(
    key: str, config: ml_collections.ConfigDict
) -> str | None:
  """None if `key` ('a' or 'a.b') is in `config`, else the error to show,
  with the closest known keys as suggestions."""
  known = _flat_keys(config)
  if key in known:
    return None
  close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
  hint = (
      f'; did you mean {" or ".join(close)}?'
      if close
      else '; see configs/default.py for every key'
  )
  return f'unknown config key {key!r}{hint}'


# Keys whose default is an empty tuple of names (an empty default says
# nothing of the type its values have).
NAME_TUPLES = ('analysis.training_parts',)


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_names(names: tuple[str, ...]) -> str:
  """('a', 'b') as the command line takes it: "('a','b')"."""
  return (
      '('
      + ','.join(repr(n) for n in names)
      + (',)' if len(names) == 1 else ')')
  )


def _type_error(
    key: str, value: Any, default: Any, expected: type
) -> str | None:
  """Why `value` cannot stand for a key whose default is `default` (of type
  `expected`), or None if it can."""
  if expected is bool:
    ok, what = isinstance(value, bool), 'True or False'
  elif expected is int:
    ok, what = _is_number(value) and int(value) == value, 'an integer'
  elif expected is float:
    ok, what = _is_number(value), 'a number'
  elif expected is str:
    ok, what = isinstance(value, str), 'a string'
  elif (
      expected is tuple and default and all(isinstance(v, str) for v in default)
  ):
    ok = isinstance(value, (tuple, list)) and all(
        isinstance(v, str) for v in value
    )
    what = f"a tuple of names, e.g. '{format_names(default)}'"
  elif expected is tuple and key in NAME_TUPLES:
    ok = isinstance(value, (tuple, list)) and all(
        isinstance(v, str) for v in value
    )
    what = 'a tuple of names, e.g. "(\'sparse_recovery\',)"'
  elif expected is tuple:
    integers = bool(default) and all(isinstance(v, int) for v in default)
    ok = isinstance(value, (tuple, list)) and all(
        _is_number(v) and (not integers or int(v) == v) for v in value
    )
    what = f'a tuple of {"integers" if integers else "numbers"}, e.g. ' + (
        "'(300,100)'" if integers else "'(0.5,0.75)'"
    )
  else:
    return None
  return None if ok else f'{key} must be {what}, got {value!r}'


def check_types(
    config: ml_collections.ConfigDict,
    reference: ml_collections.ConfigDict,
    prefix: str = '',
) -> None:
  """Raises ConfigError if a key's value does not have the type of its
  default in `reference` (configs/default.py): the command line parses a
  value by that type, but a config file can set anything."""
  for key, default in reference.items():
    if key not in config:
      continue
    value = config[key]
    if isinstance(default, ml_collections.ConfigDict):
      if isinstance(value, ml_collections.ConfigDict):
        check_types(value, default, f'{prefix}{key}.')
      continue
    if value is None and default is None:
      continue  # An unset optional path (data_dir, manual_dir).
    error = _type_error(prefix + key, value, default, reference.get_type(key))
    require(error is None, error)
