"""Two users and one app: alice owns a dataset, an imported checkpoint, a queued experiment, a private
and a public model (made through core before the server starts); bob owns nothing. Used by the
privacy tests over HTTP and in the browser."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.app_server import app_server

REPO = Path(__file__).resolve().parent.parent
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-22")
DS_NAME = "Alice secret set"
EXP_TITLE = "Alice secret run"
PRIV_NAME = "Alice private model"
PUB_NAME = "Alice public model"
CK_NAME = "alicetiny"
VEC_NAME = "Alice secret vector"
DIR_NAME = "Alice secret direction"


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_alice(home: Path) -> dict:
    """Runs in a child process (torch, core) so the test process stays light: alice's items."""
    code = f"""
import json, os, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from tests.tiny import write_blob_images, write_tiny_checkpoint
from core.checkpoints import import_checkpoint
from core.datasets import import_dataset
from core.jobs import submit_experiment
from core import models
home = Path(os.environ['ATELIER_HOME'])
ck = write_tiny_checkpoint(home.parent / 'tiny.safetensors')
import_checkpoint(ck, name={CK_NAME!r}, user='alice', thumbnail=False)
rep = import_dataset([str(write_blob_images(home.parent / 'blobs', n=12, size=64))], {DS_NAME!r}, user='alice')
exp = submit_experiment('alice', title={EXP_TITLE!r}, dataset=rep.dataset_id, checkpoint={CK_NAME!r}, steps=4)
# other weights than the public model's: Gradio names a served file by its bytes, so identical bytes
# handed to bob through the public model would share the private model's URL (and rightly be his)
priv = models.save_model('alice', weights_path=write_tiny_checkpoint(home.parent / 'priv.safetensors', seed=1),
                         name={PRIV_NAME!r}, source={{'step': 4}})
pub = models.save_model('alice', weights_path=ck, name={PUB_NAME!r},
                        source={{'step': 4, 'experiment': exp, 'dataset': {DS_NAME!r}, 'base_model': {CK_NAME!r}}})
models.set_public(pub, 'alice', True)
from core.playground.view import View, keep_view, save_slot
vec, _ = keep_view('alice', View('model:' + pub, seed=3), {VEC_NAME!r})
direction = save_slot('alice', 'model:' + pub, 'sefa:all', 0, {DIR_NAME!r})
print(json.dumps(dict(ds=rep.dataset_id, exp=exp, priv=priv, pub=pub, vec=vec['id'], dir=direction['id'])))
"""
    env = {**os.environ, "ATELIER_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@contextmanager
def two_user_server(base: Path, extra_env: dict | None = None):
    """``app.py --auth`` (alice, bob) with alice's items, on a free port; stopped by its process group."""
    home, gtmp, tmp = base / "home", base / "gradio-tmp", base / "tmp"
    for d in (home, gtmp, tmp):
        d.mkdir()
    sys.path.insert(0, str(REPO))
    from core.users import add_user  # stdlib only
    auth = base / "users.json"
    add_user(auth, *ALICE)
    add_user(auth, *BOB)
    ids = setup_alice(home)
    env = {**os.environ, "ATELIER_HOME": str(home), "GRADIO_TEMP_DIR": str(gtmp), "TMPDIR": str(tmp),
           "GRADIO_ANALYTICS_ENABLED": "False", **(extra_env or {})}
    with app_server(["--auth", str(auth), "--data", str(home), "--no-worker"], env, base / "server.log") as url:
        yield dict(url=url, home=home, ids=ids, log=base / "server.log")
