"""JAX's persistent compilation cache, shared by all of a user's runs.

The runs of a sweep, a resumed run and a rerun compile the same programs;
with the cache, only the first process compiles each one and the others
load it from disk (the cache key covers the program, the devices and the
compiler version, so a changed model or device count compiles afresh).

Where it lives, first match wins:
  * config.compilation_cache_dir: a directory, or 'off';
  * the environment's JAX_COMPILATION_CACHE_DIR (JAX's own variable), and
    JAX_ENABLE_COMPILATION_CACHE=false to switch it off;
  * DEFAULT_DIR, under $XDG_CACHE_HOME (~/.cache by default).

A damaged entry (e.g. a process killed while writing it) makes JAX warn and
compile that program again; it never changes a result. Deleting the
directory is always safe.
"""

import os

import jax

from runtime import disk_cache

OFF = disk_cache.OFF
DEFAULT_DIR = os.path.join(disk_cache.ROOT, 'jax-compilation')


def directory(setting: str | None) -> str | None:
  """The cache directory for config.compilation_cache_dir = `setting`
  (None: the environment's or DEFAULT_DIR), or None when it is off."""
  if setting == OFF:
    return None
  if setting:
    return os.path.abspath(os.path.expanduser(setting))
  if not jax.config.jax_enable_compilation_cache:  # Switched off by env.
    return None
  return os.environ.get('JAX_COMPILATION_CACHE_DIR') or DEFAULT_DIR


def enable(setting: str | None) -> str | None:
  """Turns the cache on (or off) for this process before anything is
  compiled; returns its directory (None: off)."""
  path = directory(setting)
  if path is None:
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', path)
  # JAX caches only programs that took over a second to compile; on a CPU
  # most of ours take less, and loading is still faster than compiling.
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  return path
