"""A graph convolutional network (Kipf & Welling, 2017) for graph
classification, over batches of fixed-size graph records
(input_pipeline/graphs.py).

Nodes are embedded as the sum of one learned vector per categorical feature
(OGB's AtomEncoder; with a TU dataset's single node label, the embedding of
the one-hot label, a linear layer without bias). Each of `depth` layers computes

    H' = relu(D^-1/2 (A + I) D^-1/2 H W + b),

A the adjacency (both directions of every bond), D the degree of A + I;
messages are gathered along the edges and summed with jax.ops.segment_sum
over the whole batch flattened to one graph of b * max_nodes nodes, padding
edges sent to a dropped extra segment. A graph is the mean of its real
nodes' features; a dense layer gives one logit per task. Padding nodes and
edges change nothing (tests/test_gcn.py checks it). `hidden_size` is the
width knob. Edge (bond) features are not used, as in Kipf & Welling and
Flax's ogbg_molpcba example.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import graphs


class GraphConvolution(nn.Module):
  """relu(D^-1/2 (A + I) D^-1/2 H W + b) over a flattened batch: `scale` is
  D^-1/2 per node, edges to node `len(hidden)` are padding."""

  features: int

  @nn.compact
  def __call__(
      self,
      hidden: jax.Array,
      senders: jax.Array,
      receivers: jax.Array,
      scale: jax.Array,
  ) -> jax.Array:
    nodes = hidden.shape[0]
    scaled = nn.Dense(self.features, use_bias=False)(hidden) * scale
    messages = jnp.concatenate(
        [scaled, jnp.zeros((1, self.features), scaled.dtype)]
    )[senders]
    summed = jax.ops.segment_sum(messages, receivers, nodes + 1)[:nodes]
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    return nn.relu((summed + scaled) * scale + bias)


class GCN(nn.Module):
  """Graph-level logits [b, num_classes] of graph records [b, record]."""

  hidden_size: int
  depth: int
  num_classes: int
  layout: graphs.Layout

  @nn.compact
  def __call__(self, records: jax.Array, train: bool = False) -> jax.Array:
    del train  # No dropout or batch statistics.
    features, senders, receivers = graphs.unpack(records, self.layout)
    batch, max_nodes = features.shape[:2]
    nodes = batch * max_nodes
    node_valid = features[..., 0] != graphs.PADDING
    sizes = self.layout.feature_sizes
    offsets = np.cumsum((0,) + sizes[:-1])
    ids = jnp.where(node_valid[..., None], features + offsets, 0)
    # Named for OGB's atoms, the first graphs it read (checkpoints keep it).
    hidden = nn.Embed(sum(sizes), self.hidden_size, name='atom_embedding')(
        ids
    ).sum(-2)
    hidden = jnp.where(node_valid[..., None], hidden, 0).reshape(
        nodes, self.hidden_size
    )

    # Edges of graph g point at nodes g * max_nodes + i; padding edges at
    # the extra segment `nodes`, which is dropped.
    edge_valid = senders != graphs.PADDING
    first = (jnp.arange(batch) * max_nodes)[:, None]
    senders = jnp.where(edge_valid, senders + first, nodes).ravel()
    receivers = jnp.where(edge_valid, receivers + first, nodes).ravel()
    degree = (
        1.0
        + jax.ops.segment_sum(
            jnp.ones_like(receivers, jnp.float32), receivers, nodes + 1
        )[:-1]
    )
    scale = jax.lax.rsqrt(degree)[:, None]
    for layer in range(self.depth):
      hidden = GraphConvolution(self.hidden_size, name=f'conv_{layer}')(
          hidden, senders, receivers, scale
      )

    hidden = hidden.reshape(batch, max_nodes, self.hidden_size)
    count = jnp.maximum(node_valid.sum(-1, keepdims=True), 1)
    pooled = jnp.where(node_valid[..., None], hidden, 0).sum(1) / count
    return nn.Dense(self.num_classes, name='head')(pooled)
