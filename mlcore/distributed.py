"""Batch norm over the global batch, for training in several processes.

Under DistributedDataParallel each process normalises its own share of the
batch; with synchronised statistics N processes x B/N train as one process x B
does (tests/engine/test_distributed.py checks it, docs/TRAINING.md measures
what it costs). torch's SyncBatchNorm does this on GPUs only; on CPUs (gloo)
the layers become `GlobalBatchNorm2d` below.
"""
import torch
import torch.distributed as dist
from torch import nn


class AllReduceSum(torch.autograd.Function):
    """The sum over ranks, differentiable: the gradient of each rank's input is the sum of
    the ranks' output gradients (every rank's loss depends on every rank's input)."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch, on any backend.

    Each rank computes its share's per-channel mean and sum of squared deviations; they are
    all-reduced through autograd (so, as in torch's SyncBatchNorm, gradients cross ranks too)
    and combined with Chan et al.'s parallel-variance formula, which keeps a float32 variance
    accurate where E[x^2] - E[x]^2 would not be. Evaluation mode is plain BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        rank, world = dist.get_rank(), dist.get_world_size()
        c, n = x.shape[1], x.numel() // x.shape[1]  # every rank holds n values per channel
        xf = x.float()
        mean = xf.mean((0, 2, 3))
        m2 = (xf - mean[:, None, None]).square().sum((0, 2, 3))
        mine = torch.stack([mean, m2])[None]
        rows = AllReduceSum.apply(torch.cat([mine.new_zeros(rank, 2, c), mine, mine.new_zeros(world - rank - 1, 2, c)]))
        means, m2s = rows[:, 0], rows[:, 1]
        mean = means.mean(0)
        count = n * world
        var = (m2s.sum(0) + n * (means - mean).square().sum(0)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / max(count - 1, 1), momentum)
        y = (xf - mean[:, None, None]) * torch.rsqrt(var + self.eps)[:, None, None]
        if self.affine:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return y.to(x.dtype)


def sync_batchnorm(net: nn.Module, device: torch.device) -> nn.Module:
    """`net` with its BatchNorm2d layers normalising over all ranks' batches (same parameters,
    buffers and state-dict keys): torch's SyncBatchNorm on CUDA, GlobalBatchNorm2d elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(net)
    for module in net.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GlobalBatchNorm2d  # adds behaviour only, no state
    return net
