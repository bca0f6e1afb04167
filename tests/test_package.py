"""One import name, one front door, one seam: what issue 13 promised a user of the package."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEVICE_ROOMS = ("mobilize.device", "mobilize.bench", "mobilize.results", "mobilize.report",
                "mobilize.emulator")


def _outside(tmp_path: Path, code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run code with this Python from a folder outside the repository (no repo on sys.path)."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout)


def test_only_mobilize_is_importable_from_outside(tmp_path):
    result = _outside(tmp_path, """
        import importlib.util, json
        print(json.dumps({name: importlib.util.find_spec(name) is not None
                          for name in ("mobilize", "models", "exporter", "device_bench")}))
    """)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"mobilize": True, "models": False, "exporter": False,
                                         "device_bench": False}


def test_a_users_own_models_package_is_not_shadowed(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "my_gen.py").write_text("MARK = 'users'\n")
    result = _outside(tmp_path, """
        import sys; sys.path.insert(0, '.')
        import models.my_gen, mobilize.models.espcn
        print(models.my_gen.MARK, mobilize.models.espcn.__name__)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["users", "mobilize.models.espcn"]


def test_the_cli_loads_neither_torch_nor_tensorflow(tmp_path):
    result = _outside(tmp_path, """
        import sys
        import mobilize, mobilize.cli
        mobilize.cli.build_parser()
        print(mobilize.__version__, 'torch' in sys.modules, 'tensorflow' in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    version, torch_loaded, tf_loaded = result.stdout.split()
    assert version[0].isdigit()
    assert (torch_loaded, tf_loaded) == ("False", "False")


def test_version_flag_prints_the_package_version():
    from mobilize import __version__

    result = subprocess.run([sys.executable, "-m", "mobilize", "--version"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip() == f"mobilize {__version__}"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_exporter_never_imports_device_code():
    offenders = {str(path.relative_to(REPO)): sorted(name for name in _imports(path)
                                                     if name.startswith(DEVICE_ROOMS))
                 for path in (REPO / "exporter").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_device_side_reaches_the_exporter_only_through_the_contract():
    offenders = {}
    for path in (REPO / "device_bench").rglob("*.py"):
        names = sorted(n for n in _imports(path) if n.startswith(("mobilize.exporter",
                                                                 "mobilize.models")))
        if names:
            offenders[str(path.relative_to(REPO))] = names
    assert offenders == {}
    contract_users = [p for p in (REPO / "mobilize" / "contract").glob("*.py")
                      if any(n.startswith("mobilize.exporter") for n in _imports(p))]
    assert [p.name for p in contract_users] == ["reference.py"]


@pytest.mark.slow
def test_a_script_outside_the_repo_exports_its_own_module(tmp_path):
    result = _outside(tmp_path, """
        import json, torch
        from torch import nn
        import mobilize

        class Gen(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Conv2d(3, 8, 3, padding=1)
                self.b = nn.Conv2d(8, 3, 3, padding=1)

            def forward(self, x):
                return torch.tanh(self.b(torch.relu(self.a(x))))

        torch.manual_seed(0)
        result = mobilize.export(Gen().eval(), inputs=[(1, 3, 32, 32)], value_range=(-1, 1),
                                 targets=["tflite-fp32"], out="out")
        meta = json.loads(result.metadata_path.read_text())
        print(json.dumps({"type": type(result).__name__,
                          "files": sorted(p.name for p in result.paths.values()),
                          "psnr": result.targets[0].verification.worst_psnr_db,
                          "source": meta["source_model"]}))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["type"] == "ExportResult"
    assert report["files"] == ["model_fp32.tflite"]
    assert report["psnr"] > 60
    assert report["source"]["kind"] == "module"
    assert report["source"]["ref"] == "__main__:Gen"


def test_export_refuses_what_is_not_a_module(tmp_path):
    import mobilize

    with pytest.raises(mobilize.MobilizeError, match="not a torch.nn.Module") as caught:
        mobilize.export(object(), inputs=[(1, 3, 8, 8)], out=tmp_path / "x")
    assert caught.value.exit_code == mobilize.ExitCode.BAD_INPUT
    assert not (tmp_path / "x").exists()
