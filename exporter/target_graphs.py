"""Stages 3 and 4 per target: each target gets the ONNX graph that suits it, and onnx2tf
converts each distinct graph once.

A rewrite one target needs is not forced on the others (config.PASS_TARGETS): PReLU is
written with RELU for int16x8 (no 16x8 PRELU kernel) and with LEAKY_RELU for int8 (XNNPACK
has neither int8 PRELU nor int8 RELU), while the float targets keep PRELU; PixelShuffle and
nearest upsampling become DEPTH_TO_SPACE everywhere but int16x8, which has no kernel for it.
Targets whose pass lists give the same graph (a net without PReLU, say) share the file and
its SavedModel, so a second onnx2tf run is paid only where the graphs really differ.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mobilize.errors import ConversionError
from mobilize.exporter.config import ExportConfig, Target
from mobilize.exporter.onnx_export import OnnxArtifact, rewrite_onnx, simplify_onnx
from mobilize.exporter.saved_model import SavedModelArtifact, onnx_to_saved_model

MAIN_ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class TargetGraph:
    """One distinct ONNX graph, the targets converted from it and its SavedModel."""

    onnx: OnnxArtifact  # rewrites: those of the first target using it
    sha256: str
    targets: tuple[Target, ...]
    file: str  # its name in the output folder
    saved: SavedModelArtifact | None = None
    error: ConversionError | None = None  # onnx2tf failed on this graph
    onnx2tf_seconds: float = 0.0


@dataclass(frozen=True)
class GraphPlan:
    graphs: tuple[TargetGraph, ...]
    rewrites: dict[Target, tuple[str, ...]]  # the passes that changed each target's graph
    simplified: bool

    def graph_of(self, target: Target) -> TargetGraph:
        return next(g for g in self.graphs if target in g.targets)

    @property
    def main(self) -> TargetGraph:
        return self.graphs[0]


def plan_graphs(raw: OnnxArtifact, config: ExportConfig, work: Path) -> GraphPlan:
    """Stage 3: onnxsim once, then each target's passes; identical results are one graph."""
    model, simplified = simplify_onnx(raw)
    by_passes: dict[tuple[str, ...], tuple[OnnxArtifact, str]] = {}
    rewrites: dict[Target, tuple[str, ...]] = {}
    by_content: dict[str, tuple[OnnxArtifact, list[Target]]] = {}
    for target in config.targets:
        passes = config.passes_for(target)
        if passes not in by_passes:
            artifact = rewrite_onnx(model, work / f"graph{len(by_passes)}.onnx", passes,
                                    raw.opset, simplified)
            by_passes[passes] = artifact, hashlib.sha256(artifact.path.read_bytes()).hexdigest()
        artifact, digest = by_passes[passes]
        rewrites[target] = artifact.rewrites
        by_content.setdefault(digest, (artifact, []))[1].append(target)
    graphs = tuple(
        TargetGraph(onnx=artifact, sha256=digest, targets=tuple(targets),
                    file=MAIN_ONNX_FILE if index == 0
                    else f"model_{targets[0].file_suffix}.onnx")
        for index, (digest, (artifact, targets)) in enumerate(by_content.items()))
    return GraphPlan(graphs=graphs, rewrites=rewrites, simplified=simplified)


def convert_graphs(plan: GraphPlan, work: Path) -> GraphPlan:
    """Stage 4: onnx2tf once per graph. A graph onnx2tf cannot convert fails its own targets;
    when every graph fails, the first error is raised."""
    converted = []
    for index, graph in enumerate(plan.graphs):
        start = time.perf_counter()
        try:
            saved = onnx_to_saved_model(graph.onnx, work / f"saved_model{index}")
            converted.append(_with(graph, saved=saved, seconds=time.perf_counter() - start))
        except ConversionError as error:
            converted.append(_with(graph, error=error, seconds=time.perf_counter() - start))
    if all(g.error is not None for g in converted):
        error = converted[0].error
        assert error is not None
        raise error
    return GraphPlan(graphs=tuple(converted), rewrites=plan.rewrites,
                     simplified=plan.simplified)


def extend_plan(plan: GraphPlan, raw: OnnxArtifact, config: ExportConfig,
                targets: Sequence[Target], work: Path) -> GraphPlan:
    """`plan` with `targets` added, each on the graph its passes give: a graph already
    converted (same content) is shared, a new one gets its own onnx2tf run in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    asked = replace(config, targets=tuple(targets), debug_quant=False, finetune_steps=0)
    extra = plan_graphs(raw, asked, work)
    graphs, new = list(plan.graphs), []
    for graph in extra.graphs:
        same = next((i for i, g in enumerate(graphs) if g.sha256 == graph.sha256), None)
        if same is None:
            new.append(graph)
        else:
            graphs[same] = replace(graphs[same], targets=graphs[same].targets + graph.targets)
    if new:
        try:
            new = list(convert_graphs(GraphPlan(tuple(new), {}, extra.simplified), work).graphs)
        except ConversionError as error:  # every new graph failed: their targets say why
            new = [replace(graph, error=error) for graph in new]
    return GraphPlan(graphs=tuple(graphs + new), rewrites={**plan.rewrites, **extra.rewrites},
                     simplified=plan.simplified)


def _with(graph: TargetGraph, *, seconds: float, saved: SavedModelArtifact | None = None,
          error: ConversionError | None = None) -> TargetGraph:
    return TargetGraph(onnx=graph.onnx, sha256=graph.sha256, targets=graph.targets,
                       file=graph.file, saved=saved, error=error, onnx2tf_seconds=seconds)


def rewrites_line(plan: GraphPlan) -> str:
    """Stage 3's line: the rewrites each target's graph got, targets alike grouped."""
    groups: dict[tuple[str, ...], list[Target]] = {}
    for target, names in plan.rewrites.items():
        groups.setdefault(names, []).append(target)
    listing = "; ".join(f"{_targets(targets)}: {', '.join(names) or 'none'}"
                        for names, targets in groups.items())
    count = len(plan.graphs)
    return (f"onnxsim {'ok' if plan.simplified else 'skipped'}, "
            f"{count} graph{'s' if count > 1 else ''}; rewrites {listing}")


def onnx2tf_line(plan: GraphPlan) -> str:
    """Stage 4's line: the input shapes, and what each onnx2tf run cost when there are more."""
    saved = next(g.saved for g in plan.graphs if g.saved is not None)
    shapes = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in saved.input_shapes.items())
    if len(plan.graphs) == 1:
        return shapes
    runs = " + ".join(f"{g.onnx2tf_seconds:.1f} s ({_targets(g.targets)}"
                      f"{', failed' if g.error else ''})" for g in plan.graphs)
    return f"{shapes}; {len(plan.graphs)} SavedModels: {runs}"


def _targets(targets: Sequence[Target]) -> str:
    return ", ".join(t.file_suffix for t in targets)
