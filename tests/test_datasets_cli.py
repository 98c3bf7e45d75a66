"""``python -m core.cli dataset ...``: JSON output and one-line errors with a non-zero exit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main

from datasets_fixtures import jpeg_bytes, pattern

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(3):
        (src / f"a{i}.jpg").write_bytes(jpeg_bytes(pattern(i)))
    (src / "sub" / "B.JPG").write_bytes(jpeg_bytes(pattern(9)))
    (src / "broken.png").write_bytes(b"nope")
    return src


def test_import_json(folder, capsys):
    assert main(["dataset", "import", str(folder), "--name", "cli set", "--resolution", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"accepted", "rejected", "converted", "duplicates", "warnings", "id", "name"} <= set(out)
    assert out["accepted"] == 4 and out["rejected"] == [{"file": "broken.png", "reason": "not an image (unrecognised format)"}]
    assert main(["dataset", "list", "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["name"] == "cli set" and item["count"] == 4 and item["resolutions"] == [32]
    assert main(["dataset", "show", "cli set", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == out["id"] and shown["report"]["accepted"] == 4
    assert main(["dataset", "pack", "cli set", "--resolution", "64"]) == 0
    assert capsys.readouterr().out.strip().endswith("center-64")
    # same name again: refused, the dataset kept
    assert main(["dataset", "import", str(folder), "--name", "cli set"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["dataset", "delete", "cli set", "--yes"]) == 0
    assert main(["dataset", "show", "cli set"]) == 2
    assert "No dataset" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["dataset", "import", "MISSING", "--name", "x"], "No such file"),
    (["dataset", "import", "EMPTY", "--name", "x"], "no images"),
    (["dataset", "import", "SRC", "--name", "x", "--crop", "diagonal"], "Unknown crop"),
    (["dataset", "import", "SRC", "--name", "x", "--resolution", "300"], "power of two"),
    (["dataset", "import", "SRC", "--name", "a/b"], "cannot contain"),
    (["dataset", "import", "SRC", "--name", "x", "--background", "red"], "--background"),
    (["dataset", "delete", "nothing", "--yes"], "No dataset"),
])
def test_bad_input_exits_2_with_one_line(folder, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    subst = {"MISSING": str(tmp_path / "missing"), "EMPTY": str(tmp_path / "empty"), "SRC": str(folder)}
    assert main([subst.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]


def test_subprocess_help_and_progress(folder, home):
    env = {**os.environ, "ATELIER_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "core.cli", "dataset", "import", "--help"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "--crop" in r.stdout and "--json" in r.stdout
    r = subprocess.run([sys.executable, "-m", "core.cli", "dataset", "import", str(folder), "--name", "sp"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "4 of 5 images accepted" in r.stdout and "broken.png" in r.stdout
    r = subprocess.run([sys.executable, "-m", "core.cli", "dataset", "import", str(folder / "nope"), "--name", "z",
                        "--json"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
