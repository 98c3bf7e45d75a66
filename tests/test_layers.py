"""The import layers (core/tools/layers.py): they hold in this tree, and the check finds each kind
of breach in a small tree made to break them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.tools import layers

REPO = Path(__file__).resolve().parent.parent


def test_python_m_core_tools_layers_passes_on_this_tree():
    out = subprocess.run([sys.executable, "-m", "core.tools.layers"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all layers hold" in out.stdout


def test_no_private_name_crosses_a_module_boundary():
    """No ``from .x import _name`` (nor ``x._name`` on an imported module) in core/, ui/ or app.py."""
    found = [f"{m.name}: {where}" for m in layers.read_modules(REPO).values() for where in m.private]
    assert found == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_check_finds_every_kind_of_breach(tmp_path):
    root = _tree(tmp_path, {
        "app.py": "import torch\n",
        "ui/__init__.py": "",
        "core/__init__.py": "",
        "core/storage.py": "",
        "core/quota.py": "from .users import _secret\n",
        "core/users.py": "def f():\n    from . import quota   # lazy, still a dependency\n",
        "core/stylegan/__init__.py": "",
        "core/stylegan/train.py": "from ..storage import x\nfrom .. import quota\n",
        "core/web.py": "import gradio as gr\n",
        "core/models.py": "from . import users\nusers._locked()\n",
        # a cycle seen only through a package's __init__, which an import from outside runs
        "core/pkg/__init__.py": "from .uses_q import y\n",
        "core/pkg/leaf.py": "",
        "core/pkg/uses_q.py": "import core.q\n",
        "core/q.py": "from core.pkg.leaf import z\n",
        # inside its own package, a submodule importing a sibling is no cycle
        "core/fine/__init__.py": "from .a import A\n",
        "core/fine/a.py": "from . import b\nA = 1\n",
        "core/fine/b.py": "from .c import C\n",
        "core/fine/c.py": "C = 1\n",
    })
    found = layers.breaches(root)
    text = "\n".join(found)
    assert "leaf: core.stylegan.train imports core.quota" in text
    assert "core.storage" not in text.split("leaf:")[1].split(";")[0]           # storage is allowed
    assert any(line.startswith("cycle: core.quota / core.users") for line in found)
    assert any(line.startswith("cycle: core.pkg / core.pkg.uses_q / core.q") for line in found)
    assert "core.fine" not in text
    assert "gradio: core.web imports gradio" in text
    assert "torch: app imports torch" in text
    assert "private: core.quota, line 1: from core.users import _secret" in text
    assert "private: core.models, line 2: core.users._locked" in text
    assert layers.main([str(root)]) == 1
