"""Device mesh and shardings for data-parallel training (one code path: 1 CPU to a TPU pod).

The mesh has one axis, `data`. Parameters and optimizer state are replicated; batches are
split along `data`. Under jit the program is written for the global batch, so BatchNorm's
batch mean is reduced across the whole mesh by XLA without an explicit axis name.
Each process contributes its slice of the global batch
(`jax.make_array_from_process_local_data`).
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


class MeshError(ValueError):
  pass


def make_mesh(data_axis: int = -1) -> Mesh:
  """A ('data',) mesh over `data_axis` devices (-1: all of them)."""
  devices = jax.devices()
  n = len(devices) if data_axis == -1 else data_axis
  if n != len(devices):
    raise MeshError(f'mesh data axis of {data_axis} does not match the {len(devices)} '
                    f'available devices ({devices[0].platform}); use -1 or {len(devices)}')
  # jax.make_mesh defaults to explicit axis types in this jax; keep the classic behaviour.
  return Mesh(np.asarray(devices), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def check_batch(global_batch: int, mesh: Mesh) -> None:
  n = mesh.devices.size
  if global_batch % n:
    raise MeshError(f'global batch {global_batch} is not divisible by the {n} devices of the '
                    f'mesh; choose a multiple of {n}')
  if global_batch % jax.process_count():
    raise MeshError(f'global batch {global_batch} is not divisible by the '
                    f'{jax.process_count()} processes')


def local_slice(global_batch: int):
  """This process's rows [start, stop) of the global batch."""
  per = global_batch // jax.process_count()
  start = jax.process_index() * per
  return start, start + per


def global_batch_array(local: dict, mesh: Mesh) -> dict:
  """Per-process numpy slices -> global jax Arrays sharded along `data`."""
  sh = data_sharded(mesh)
  return {k: jax.make_array_from_process_local_data(sh, v) for k, v in local.items()}



def align_processes(name: str, timeout_s: int = 1800) -> None:
  """Waits until every process reaches this point (no-op with one process).

  CPU collectives (gloo) give a process 30 s to join a collective over a device set it has
  not used before, a limit XLA does not expose. Whatever comes first in a process (model
  init, compiling the step, a slow host) can differ by more than that between processes,
  so the first collective would fail with DEADLINE_EXCEEDED. This barrier uses the
  coordination service, which takes a timeout; call it right before a first collective.
  (`device_put` onto a multi-process sharding is one: it checks that every process holds
  the same values.)
  """
  if jax.process_count() == 1:
    return
  # jax has no public barrier that avoids a collective; this is the client that
  # jax.distributed.initialize made.
  from jax._src import distributed  # pylint: disable=g-import-not-at-top
  # Every process makes the same calls in the same order, so a counter keeps ids unique
  # (a barrier id is single-use) and identical across processes.
  _BARRIERS[name] = _BARRIERS.get(name, 0) + 1
  distributed.global_state.client.wait_at_barrier(f'{name}_{_BARRIERS[name]}',
                                                  timeout_s * 1000)


_BARRIERS = {}


def compile_and_align(step_fn, *args, name: str):
  """Compiles `step_fn` for `args`, then `align_processes`: its first run's collectives
  start with every process ready. Returns the compiled step (same signature)."""
  compiled = step_fn.lower(*args).compile()
  align_processes(name)
  return compiled
