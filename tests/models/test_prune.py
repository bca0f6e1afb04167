"""Structured channel pruning of fast_style's residual branches."""

from __future__ import annotations

import torch

from mobilize.models import fast_style, metrics, prune


def test_pruning_nothing_reproduces_the_teacher_exactly() -> None:
    teacher = fast_style.build(pretrained=True)
    same = prune.prune(teacher, inner=fast_style.CHANNELS[-1])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(teacher(x), same(x), atol=1e-6)


def test_pruning_keeps_the_most_important_channels_and_shrinks_the_net() -> None:
    teacher = fast_style.build(pretrained=True)
    pruned = prune.prune(teacher, inner=prune.INNER)
    first = teacher.body[0].body[0]
    importance = first[1].weight.abs().sum(dim=(1, 2, 3)) * first[2].weight.abs()
    kept = importance.argsort(descending=True)[:prune.INNER].sort().values
    assert torch.equal(pruned.body[0].body[0][1].weight, first[1].weight[kept])
    assert metrics.count_parameters(pruned) < 0.5 * metrics.count_parameters(teacher)


def test_committed_pruned_weights_load_and_stay_close_to_the_cartoon() -> None:
    model = prune.build_pruned(pretrained=True)
    assert model.body[0].body[0][1].out_channels == prune.INNER
    quality = metrics.heldout_quality(model, fast_style.TASK, -1.0, size=128)
    assert quality.psnr > 20.0
