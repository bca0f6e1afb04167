"""Stage 7's document: metadata.json of an export (read back by mobilize.contract.metadata)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mobilize.contract import files as artifacts
from mobilize.contract.metadata import input_spec_to_json, value_range_to_json
from mobilize.exporter.calibration import RepresentativeData
from mobilize.exporter.config import ExportConfig, Layout
from mobilize.exporter.model_loader import LoadedModel
from mobilize.exporter.quant_debug import to_json as quant_debug_json
from mobilize.exporter.target_graphs import GraphPlan

if TYPE_CHECKING:
    from mobilize.exporter.pipeline import TargetResult


def build_metadata(config: ExportConfig, loaded: LoadedModel, plan: GraphPlan,
                   data: RepresentativeData, results: list[TargetResult],
                   seconds: dict[str, float], warnings: tuple[str, ...] = ()) -> dict[str, Any]:
    main = plan.main
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_model": {"ref": loaded.source, "kind": loaded.kind, "weights": loaded.weights},
        "inputs": [input_spec_to_json(spec) for spec in loaded.inputs],
        "output_names": list(loaded.output_names),
        "output_range": value_range_to_json(loaded.output_range),
        # model.onnx: the first target's graph; `graphs` lists every graph converted
        "onnx": {"file": main.file, "sha256": main.sha256, "opset": main.onnx.opset,
                 "simplified": plan.simplified, "rewrites": list(main.onnx.rewrites),
                 "op_types": list(main.onnx.op_types), "passes": list(config.onnx_passes),
                 "graphs": [{"file": g.file, "sha256": g.sha256,
                             "targets": [t.value for t in g.targets],
                             "rewrites": list(g.onnx.rewrites),
                             "op_types": list(g.onnx.op_types),
                             "onnx2tf_seconds": round(g.onnx2tf_seconds, 3)}
                            for g in plan.graphs]},
        "calibration": {"source": data.calibration.source, "count": data.calibration.count,
                        "requested": config.calib_samples,
                        "warnings": list(data.calibration.warnings)}
        if any(t.needs_calibration for t in config.targets) else None,
        "verification_source": {"source": data.verification.source,
                                "count": data.verification.count},
        "tool_versions": artifacts.tool_versions(),
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "min_psnr_db": config.min_psnr,
        "warnings": list(warnings),  # about the export as a whole (e.g. the output range)
        "artifacts": [artifact_json(r, loaded, plan) for r in results if r.ok],
        "failed": [{"target": r.target.value, "error": r.error, "hint": r.hint}
                   for r in results if not r.ok],
    }


def artifact_json(result: TargetResult, loaded: LoadedModel, plan: GraphPlan) -> dict[str, Any]:
    assert result.graph is not None and result.verification is not None
    verification = result.verification
    layouts = {**verification.input_layouts, **verification.output_layouts}

    def tensors(infos: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [{**info.to_json(), "layout": layouts.get(info.name, Layout.OTHER).value}
                for info in infos]

    image_layouts = {layouts[s.name].value for s in loaded.inputs if s.name in layouts}
    graph = plan.graph_of(result.target)
    return {
        "target": result.target.value,
        "file": result.file,
        "sha256": result.sha256,
        "size_bytes": result.size_bytes,
        "io": result.io,
        "layout": image_layouts.pop() if len(image_layouts) == 1 else "mixed",
        "inputs": tensors(result.graph.inputs),
        "outputs": tensors(result.graph.outputs),
        "export_seconds": round(result.seconds, 3),
        # the ONNX graph this file was converted from, and the rewrites that changed it
        "onnx": {"file": graph.file, "sha256": graph.sha256,
                 "rewrites": list(plan.rewrites[result.target])},
        "verification": verification.to_json(),
        "graph": {"op_histogram": result.graph.op_histogram,
                  "fully_integer": result.graph.fully_integer,
                  "float_ops": list(result.graph.float_ops),
                  "transposes_between_convs": result.graph.transposes_between_convs,
                  "cpu_delegate": result.graph.delegate_json()},
        "strip": result.strip,
        "warnings": list(result.warnings),
        **({"int8_ranges": {**result.ranges.to_json(),
                            "calibration_samples": result.calibration_count,
                            "validation_samples": result.validation_count}}
           if result.ranges is not None else {}),
        **({"quant_debug": quant_debug_json(result.quant_debug)}
           if result.quant_debug is not None else {}),
        # int8 under 30 dB: the targets measured on this model for the advice in `warnings`
        **({"alternatives_measured": [option.to_json() for option in result.alternatives]}
           if result.alternatives else {}),
    }


def write_graphs(plan: GraphPlan, out: Any) -> None:
    """Every distinct ONNX graph into the output folder (model.onnx first)."""
    for graph in plan.graphs:
        artifacts.atomic_write_bytes(out / graph.file, graph.onnx.path.read_bytes())
