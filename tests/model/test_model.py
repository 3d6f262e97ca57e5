"""Architecture: output shapes and dtypes, parameter counts, input checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hvisnet_jax import config_defaults
from hvisnet_jax.model import hvisnet as model


@pytest.mark.parametrize('hw', [(64, 96), (128, 64)])
def test_output_shapes_and_dtypes(tiny_variables, hw):
  cfg = config_defaults.tiny_model_config()
  h, w = hw
  out = model.HVISNet(cfg).apply(tiny_variables, jnp.zeros((2, h, w, 3)))
  k, m = cfg.blendmask.num_bases, cfg.blendmask.attn_size
  assert len(out['levels']) == 3
  for level, s in zip(out['levels'], cfg.strides):
    want = {'cls_logits': 1, 'bbox_reg': 4, 'ctrness': 1, 'top_feats': k * m * m,
            'embedding': cfg.identity.embedding_dim}
    for key, c in want.items():
      assert level[key].shape == (2, h // s, w // s, c), key
      assert level[key].dtype == jnp.float32
    assert (np.asarray(level['bbox_reg']) >= 0).all()   # ReLU'd distances
  assert out['bases'].shape == (2, h // 4, w // 4, k)
  assert out['semantic_logits'].shape == (2, h // 4, w // 4, 1)


def test_bfloat16_compute_keeps_float32_params_and_outputs(tiny_variables):
  cfg = config_defaults.tiny_model_config()
  cfg.dtype = 'bfloat16'
  out = model.HVISNet(cfg).apply(tiny_variables, jnp.zeros((1, 64, 64, 3)))
  assert out['levels'][0]['cls_logits'].dtype == jnp.float32
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(tiny_variables['params']))


def test_paper_config_parameter_count():
  cfg = config_defaults.model_config()
  shapes = jax.eval_shape(model.HVISNet(cfg).init, jax.random.PRNGKey(0),
                          jnp.zeros((1, 64, 64, 3)))
  count = lambda t: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(t))
  # timm's dla34 has 15,742,104 parameters, 513,000 of them in the 1000-way classifier.
  assert count(shapes['params']['backbone']) == 15_742_104 - 513_000
  # Backbone 15.23M + FPN 2.0M + towers 4.7M + attention 1.8M + identity 0.66M + bases 1.5M.
  assert 25.0e6 < count(shapes['params']) < 27.0e6


def test_first_level_classification_prior(tiny_variables):
  """The class bias starts at the FCOS prior 0.01, so an untrained net predicts ~0.01."""
  bias = tiny_variables['params']['head']['cls_logits']['bias']
  np.testing.assert_allclose(jax.nn.sigmoid(bias), 0.01, rtol=1e-5)


@pytest.mark.parametrize('shape,match', [((64, 64, 3), 'N, H, W, 3'), ((1, 64, 64, 4), 'N, H, W, 3'),
                                         ((1, 60, 64, 3), 'multiples of 32')])
def test_bad_input_shapes(tiny_variables, shape, match):
  with pytest.raises(ValueError, match=match):
    model.HVISNet(config_defaults.tiny_model_config()).apply(tiny_variables, jnp.zeros(shape))


def test_locations_follow_fcos_convention():
  cfg = config_defaults.tiny_model_config()
  locs, strides = model.locations(cfg, 64, 96)
  assert locs.shape == (8 * 12 + 4 * 6 + 2 * 3, 2)
  np.testing.assert_array_equal(locs[:2], [[4, 4], [12, 4]])       # arange * 8 + 4
  np.testing.assert_array_equal(locs[8 * 12], [8, 8])              # first P4 location
  assert set(np.asarray(strides).tolist()) == {8, 16, 32}


def test_instance_outputs_at_kept_locations_equal_the_dense_maps(tiny_variables):
  """Inference computes attentions and embeddings only where it keeps an instance, from
  3x3 neighbourhoods: the same numbers as the dense convs there, edges included."""
  cfg = config_defaults.tiny_model_config()
  params = jax.tree.map(lambda x: x, tiny_variables['params'])
  for name in ('top_layer', 'id_conv1', 'id_conv2'):      # away from the ~0 initialisation
    params['head'][name]['kernel'] = params['head'][name]['kernel'] * 50.0
    params['head'][name]['bias'] = params['head'][name]['bias'] + 0.1
  variables = dict(tiny_variables, params=params)
  images = jax.random.uniform(jax.random.PRNGKey(1), (2, 64, 96, 3), maxval=255.0)
  dense = model.HVISNet(cfg).apply(variables, images)
  sparse = model.HVISNet(cfg, dense_instance_outputs=False).apply(variables, images)
  assert 'top_feats' not in sparse['levels'][0] and 'box_tower' in sparse['levels'][0]
  np.testing.assert_array_equal(sparse['levels'][1]['cls_logits'],
                                dense['levels'][1]['cls_logits'])
  flat = model.flatten_levels(dense['levels'])
  sizes = [h * w for h, w in model.level_shapes(cfg, 64, 96)]
  starts = np.cumsum([0] + sizes[:-1])
  # Every level's first and last location (corners), its middle, and a random few.
  idx = np.concatenate([starts, starts + np.array(sizes) - 1, starts + np.array(sizes) // 2,
                        np.random.default_rng(0).integers(0, sum(sizes), 6)]).astype(np.int32)
  head = {'params': params['head']}
  for b in range(2):
    levels = [jax.tree.map(lambda x: x[b], lv) for lv in sparse['levels']]
    top, emb = model.instance_outputs_at(cfg, head, [lv['box_tower'] for lv in levels],
                                         [lv['features'] for lv in levels], jnp.asarray(idx))
    want_top, want_emb = flat['top_feats'][b][idx], flat['embedding'][b][idx]
    assert float(jnp.abs(want_top).max()) > 0.1
    # float32 sums round in proportion to the magnitudes summed, not to the result: with the
    # kernels scaled up, embedding entries reach ~1e3 and a near-zero entry of the same row
    # can differ by ~1e-4 between the dense and the gathered convolutions (seen on a CPU
    # whose vector width changes XLA's accumulation order). A wrong neighbourhood would
    # differ by the row's whole scale.
    for got, want in ((top, want_top), (emb, want_emb)):
      np.testing.assert_allclose(got, want, rtol=1e-5,
                                 atol=max(1e-5, 1e-6 * float(np.abs(want).max())))


def test_blend_at_a_finer_resolution_samples_the_same_window():
  """inference.mask_resolution: 2R cells over the same box, pooled 2x2, give the R cells
  (exact for bases linear in position and a constant attention per instance)."""
  from hvisnet_jax.model import blender  # pylint: disable=g-import-not-at-top
  mcfg = config_defaults.tiny_model_config()
  k, m, r = (mcfg.blendmask.num_bases, mcfg.blendmask.attn_size,
             mcfg.blendmask.pooler_resolution)
  yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
  bases = np.stack([(0.03 * (i + 1)) * xx - (0.02 * i) * yy + i for i in range(k)], -1)
  attn = np.repeat(np.random.default_rng(0).normal(size=(3, k, 1, 1)), m * m, -1)
  boxes = np.array([[8, 12, 100, 140], [30, 20, 60, 90], [0, 0, 190, 158]], np.float32)
  coarse = np.asarray(blender.blend(jnp.asarray(bases), jnp.asarray(attn.reshape(3, -1)),
                                    jnp.asarray(boxes), mcfg))
  fine = np.asarray(blender.blend(jnp.asarray(bases), jnp.asarray(attn.reshape(3, -1)),
                                  jnp.asarray(boxes), mcfg, resolution=2 * r))
  assert coarse.shape == (3, r, r) and fine.shape == (3, 2 * r, 2 * r)
  pooled = fine.reshape(3, r, 2, r, 2).mean((2, 4))
  inside = (slice(None), slice(1, -1), slice(1, -1))   # edge cells clamp at the bases' border
  np.testing.assert_allclose(pooled[inside], coarse[inside], atol=1e-3)
