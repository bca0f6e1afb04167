"""`equalize_before_instance_norm`: the exact float rewrite --finetune applies first.

Each convolution whose output an InstanceNorm2d alone reads is rescaled per output channel
(centred, scaled to the channels' geometric-mean std), so that its output's one int8 scale
serves every channel alike; the norm removes the change again (exact up to its eps). Nothing
rounds here: it reads exporter/fake_quant.py's trace of module calls to find those
convolutions. exporter/finetune.py (`_equalize`) applies it to the student and undoes it when
the float output moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mobilize.exporter.fake_quant import CONVS, _leaf_readers, _trace


@torch.no_grad()
def equalize_before_instance_norm(model: nn.Module,
                                  batches: Sequence[Sequence[torch.Tensor]]) -> int:
    """Rescale, in place, each convolution whose output an InstanceNorm2d alone reads:
    its output channels centred (bias minus the channel's mean over the batches: the norm
    subtracts it anyway) and scaled to the channels' geometric-mean spatial std (weight
    and bias times s_c, within [0.1, 10]: the norm divides it out), so the conv output's
    one int8 scale serves every channel alike. Exact in float up to the norm's eps; a
    functional reader of the conv output (`norm(y) + y`) is not seen here, so callers
    check the output. Returns how many convolutions were rescaled."""
    stds: dict[int, list[torch.Tensor]] = {}
    means: dict[int, list[torch.Tensor]] = {}
    convs: dict[int, nn.Module] = {}
    for batch in batches:
        calls = _trace(model, batch)
        readers = _leaf_readers(calls)
        for index, call in enumerate(calls):
            conv, out = call.module, call.output
            read_by = readers.get(index, [])
            if (not isinstance(conv, CONVS) or conv.bias is None or out is None
                    or conv.groups != 1 or len(read_by) != 1
                    or not isinstance(read_by[0], nn.InstanceNorm2d)):
                continue
            convs[id(conv)] = conv
            stds.setdefault(id(conv), []).append(out.double().std((2, 3)))
            means.setdefault(id(conv), []).append(out.double().mean((2, 3)))
    for key, conv in convs.items():
        std = torch.cat(stds[key]).mean(0).clamp_min(1e-8)
        mean = torch.cat(means[key]).mean(0)
        scale = (std.log().mean().exp() / std).clamp(0.1, 10.0)
        shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        conv.weight.mul_(scale.view(shape).to(conv.weight.dtype))
        conv.bias.sub_(mean.to(conv.bias.dtype)).mul_(scale.to(conv.bias.dtype))
    return len(convs)

