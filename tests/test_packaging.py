"""The six distributions built as wheels and installed into clean venvs (issue 12).

``pip install v6flow[all]`` must not put bare ``server``, ``node``, ``flows``, ``blocks``,
``ui`` or ``tests`` packages into site-packages: each distribution installs one namespaced
import package. The wheels are built without build isolation (offline) from a copy of this
checkout, so a stray ``include`` in any pyproject.toml shows up here.
"""

from __future__ import annotations

import csv
import email.message
import email.parser
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: folder of the repository → (distribution, its one import package)
DISTRIBUTIONS = {
    ".": ("v6flow", "v6flow"),
    "server": ("v6flow-server", "v6flow_server"),
    "node": ("v6flow-node", "v6flow_node"),
    "blocks": ("prefect-v6flow", "prefect_v6flow"),
    "flows": ("v6flow-flows", "v6flow_flows"),
    "ui": ("v6flow-ui", "v6flow_ui"),
}
IMPORT_NAMES = {package for _, package in DISTRIBUTIONS.values()}
#: What the copy of the checkout leaves out (caches, venvs, build output).
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".cache", "__pycache__", "*.egg-info",
                                     "build", "dist", ".mypy_cache", ".ruff_cache",
                                     ".pytest_cache", "*.sqlite", "*.db")


@dataclass(frozen=True)
class Wheel:
    """One built wheel and what its metadata says."""

    path: Path
    name: str
    top_level: set[str]        # top_level.txt
    record_top: set[str]       # first path component of every file in RECORD
    metadata: email.message.Message
    entry_points: str

    def requires(self) -> list[str]:
        return list(self.metadata.get_all("Requires-Dist") or [])


def _read_wheel(path: Path) -> Wheel:
    with zipfile.ZipFile(path) as archive:
        info = next(n.split("/")[0] for n in archive.namelist()
                    if n.split("/")[0].endswith(".dist-info"))

        def read(name: str) -> str:
            try:
                return archive.read(f"{info}/{name}").decode()
            except KeyError:
                return ""

        record = [row[0] for row in csv.reader(read("RECORD").splitlines()) if row]
        metadata = email.parser.Parser().parsestr(read("METADATA"))
        top_level, entry_points = read("top_level.txt"), read("entry_points.txt")
    return Wheel(path=path, name=str(metadata["Name"]),
                 top_level={line for line in top_level.split() if line},
                 record_top={entry.split("/")[0] for entry in record
                             if not entry.split("/")[0].endswith((".dist-info", ".data"))},
                 metadata=metadata, entry_points=entry_points)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Wheel]:
    """The six wheels, built with ``pip wheel --no-deps --no-build-isolation``."""
    work = tmp_path_factory.mktemp("packaging")
    source, out = work / "src", work / "wheels"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES, symlinks=True)
    out.mkdir()
    for folder in DISTRIBUTIONS:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "--no-index", "--quiet", "--wheel-dir", str(out), str(source / folder)],
            capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, f"building {folder}: {done.stdout}{done.stderr}"
    built = {wheel.name: wheel for wheel in map(_read_wheel, sorted(out.glob("*.whl")))}
    assert set(built) == {dist for dist, _ in DISTRIBUTIONS.values()}
    return built


def _venv(path: Path) -> Path:
    """A clean venv without pip (the host's pip installs into it); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    return path / "bin" / "python"


def _install(python: Path, wheels: list[Wheel]) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-index", "--no-deps", *(str(w.path) for w in wheels)],
                   check=True, capture_output=True, timeout=300)


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                          "'purelib'))"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def full_venv(wheels: dict[str, Wheel], tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Path]:
    """A clean venv with all six wheels (no dependencies); yields its python."""
    python = _venv(tmp_path_factory.mktemp("venv-all") / "venv")
    _install(python, list(wheels.values()))
    yield python


def test_each_wheel_holds_exactly_its_namespaced_package(wheels: dict[str, Wheel]) -> None:
    """top_level.txt and RECORD of every wheel name its one package, nothing else."""
    for dist, package in DISTRIBUTIONS.values():
        wheel = wheels[dist]
        assert wheel.top_level == {package}, dist
        assert wheel.record_top == {package}, dist


def test_a_clean_venv_gets_only_the_six_namespaced_import_names(full_venv: Path) -> None:
    """site-packages holds v6flow, v6flow_server, ... and no server, node, flows, blocks, ui."""
    entries = {path.name for path in _site_packages(full_venv).iterdir()
               if not path.name.endswith(".dist-info") and path.name != "__pycache__"}
    import_names = {name.removesuffix(".py") for name in entries if not name.endswith(".pth")}
    assert import_names == IMPORT_NAMES
    assert not import_names & {"server", "node", "flows", "blocks", "ui", "tests", "benchmarks"}


def test_the_library_imports_without_the_other_distributions(
        wheels: dict[str, Wheel], tmp_path: Path) -> None:
    """A venv with the v6flow wheel alone: the library imports; no sibling package is there."""
    python = _venv(tmp_path / "venv")
    _install(python, [wheels["v6flow"]])
    # Its third-party dependencies come from this interpreter's site-packages, read as a plain
    # path entry: its .pth files (the editable installs of the siblings) are not processed.
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    probe = ("import importlib.util, json, v6flow, v6flow.client, v6flow.algorithm, "
             "v6flow.schemas, v6flow.wire; "
             "print(json.dumps({'v6flow': v6flow.__file__, 'others': "
             f"[n for n in {sorted(IMPORT_NAMES - {'v6flow'})!r} "
             "if importlib.util.find_spec(n) is not None]}))")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                          check=False, timeout=120, cwd=tmp_path,  # not the checkout
                          env={"PYTHONPATH": ":".join(sorted(deps)), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert Path(found["v6flow"]).is_relative_to(_site_packages(python))
    assert found["others"] == []


def test_prefect_finds_the_collection_through_its_entry_point(full_venv: Path) -> None:
    """The ``prefect.collections`` entry point names prefect_v6flow, declared by it alone."""
    probe = ("import json; from importlib.metadata import entry_points; "
             "print(json.dumps([[e.name, e.value, e.dist.name] "
             "for e in entry_points(group='prefect.collections')]))")
    done = subprocess.run([str(full_venv), "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == [["prefect_v6flow", "prefect_v6flow", "prefect-v6flow"]]


def test_sibling_distributions_require_the_library_by_name_and_version(
        wheels: dict[str, Wheel]) -> None:
    """v6flow-server, -node, -flows and prefect-v6flow pin ``v6flow`` at the same version."""
    version = wheels["v6flow"].metadata["Version"]
    for dist in ("v6flow-server", "v6flow-node", "prefect-v6flow", "v6flow-flows"):
        wheel = wheels[dist]
        assert wheel.metadata["Version"] == version, dist
        pins = [req for req in wheel.requires()
                if req.split("[")[0].split("=")[0] == "v6flow" and ";" not in req]
        assert len(pins) == 1 and pins[0].endswith(f"=={version}"), (dist, pins)


def test_the_all_extra_names_the_five_sibling_distributions(wheels: dict[str, Wheel]) -> None:
    """``v6flow[all]`` requires every sibling distribution by name."""
    all_extra = {req.split(";")[0].split("[")[0].split("=")[0].strip()
                 for req in wheels["v6flow"].requires() if 'extra == "all"' in req}
    siblings = {dist for dist, _ in DISTRIBUTIONS.values()} - {"v6flow"}
    assert siblings <= all_extra


def test_package_data_travels_with_the_wheels(wheels: dict[str, Wheel]) -> None:
    """The UI's files, the migrations' template and the password list are in the wheels."""
    def names(dist: str) -> set[str]:
        with zipfile.ZipFile(wheels[dist].path) as archive:
            return set(archive.namelist())

    ui = names("v6flow-ui")
    on_disk = {str(p.relative_to(ROOT / "ui")) for p in (ROOT / "ui" / "v6flow_ui").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk <= ui
    server = names("v6flow-server")
    assert "v6flow_server/db/migrations/script.py.mako" in server
    assert "v6flow_server/auth/common-passwords.txt" in server
    assert {f"{package}/py.typed" for _, package in DISTRIBUTIONS.values()} <= set().union(
        *(names(dist) for dist, _ in DISTRIBUTIONS.values()))
