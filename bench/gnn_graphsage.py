"""GraphSAGE trained self-supervised, for bench/bench_lookalikes.py to measure beside the
propagation the indexer uses. Not a project dependency: run in a venv of its own,

    python3 -m venv /tmp/gnn-venv
    /tmp/gnn-venv/bin/pip install torch==2.13.0 torch_geometric==2.8.1 numpy
    python bench/bench_lookalikes.py --gnn-python /tmp/gnn-venv/bin/python

    python bench/gnn_graphsage.py IN.npz OUT.npy

IN.npz holds ``x`` (n, d float32 unit vectors) and ``src``/``dst`` (edges: the embedding's
kNN graph and SIMILAR_TO). Two SAGEConv layers (mean aggregation) over the centred vectors,
trained with GraphSAGE's unsupervised loss (Hamilton et al. 2017): linked images score high,
random pairs low. The output is the trained embedding concatenated with the centred input
(so an image keeps what it is, as APPNP's teleport term does), unit length. Seeded.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch_geometric.nn import SAGEConv

EPOCHS = 200
HIDDEN = 512
OUT = 256
LR = 0.005
NEGATIVES = 5


class Sage(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = SAGEConv(dim, HIDDEN)
        self.conv2 = SAGEConv(HIDDEN, OUT)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x, edges))
        return self.conv2(h, edges)


def main(inp: str, out: str) -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    data = np.load(inp)
    x = data["x"].astype(np.float32)
    x = x - x.mean(axis=0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    src, dst = data["src"].astype(np.int64), data["dst"].astype(np.int64)
    edges = torch.from_numpy(np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]))
    features = torch.from_numpy(x)
    model = Sage(x.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    n = len(x)
    pos_a, pos_b = torch.from_numpy(src), torch.from_numpy(dst)
    for _ in range(EPOCHS):
        model.train()
        optimiser.zero_grad()
        z = F.normalize(model(features, edges), dim=1)
        pos = (z[pos_a] * z[pos_b]).sum(dim=1) * 5
        neg_a = pos_a.repeat(NEGATIVES)
        neg_b = torch.randint(0, n, (len(neg_a),))
        neg = (z[neg_a] * z[neg_b]).sum(dim=1) * 5
        loss = -F.logsigmoid(pos).mean() - F.logsigmoid(-neg).mean()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        z = F.normalize(model(features, edges), dim=1).numpy()
    joined = np.concatenate([z, x], axis=1)
    joined /= np.maximum(np.linalg.norm(joined, axis=1, keepdims=True), 1e-12)
    np.save(out, joined.astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
