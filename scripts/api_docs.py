"""Write docs/api.md from the running app's API description: `python scripts/api_docs.py`."""
from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HEADER = """# Atelier's API

Every action in the web app is also a named endpoint. Call them with `gradio_client`:

```python
from gradio_client import Client, handle_file
c = Client("http://127.0.0.1:7860/")            # with --auth: Client(url, auth=("name", "password"))
c.predict(api_name="/list_datasets")
c.predict([handle_file("a.png"), handle_file("b.png")], [], "", "My set", "center", False, False, 0,
          api_name="/import_dataset")
```

Rules that hold for every endpoint:

- It acts as the **signed-in user only** (`--auth`); the user never comes from a parameter.
- Ids of datasets, experiments and models are opaque strings (from the list endpoints, under the
  dropdown update's `value` / `choices`). Playground models are `model:<id>` (My Models, own or
  public) or `checkpoint:<name>` (bundled default, imported or downloaded checkpoints).
- Errors come back as one sentence starting with ⚠ in the message output, never a traceback.
- Outputs that update a component (a dropdown's choices, a button's visibility) come back as
  dicts with `__type__: update`; files as paths downloaded by the client.
- Experiments: `step` of `/show_snapshot` and `/save_to_my_models` is a training step; the nearest
  snapshot is used. `/start_experiment`'s `lr` 0 and `batch` 0 mean automatic; `time_cap` is in minutes;
  `precision` is `auto` (chosen for the worker's device and named in the run's log), `fp32`, `fp16`
  (CUDA only) or `bf16`.
- Playground: `source` is `seed` (the seed, or the pasted / uploaded vector), `vector:<id>` (ids from
  `/list_vectors`) or `projection:<id>` (from `/projection_status` once a projection is over);
  `direction_set` is `sefa:<group>` or `ganspace:<group>` (group `all`, `coarse`, `middle`, `fine`) or
  `saved`, and `s1`..`s6` are its sliders' strengths. Keyframes are seeds (as text), `vector:<id>` and
  `projection:<id>`. A projection runs in the background: `/start_projection`, then `/projection_status`
  about once a second until it says done; `/stop_projection` keeps the closest result so far. Vectors,
  directions and projections are the signed-in user's own.
- With `--auth`, only a signed-in client reaches any endpoint (`Client(url, auth=...)`), and an
  event's results can be read by the user who started it only.

| endpoint | inputs (in order) |
|---|---|
"""


def main() -> None:
    os.environ.setdefault("ATELIER_HOME", tempfile.mkdtemp(prefix="atelier-api-"))
    import gradio_client

    import app
    demo = app.build_app()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs(app.parse_args(["--port", str(port)])))
    info = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False).view_api(return_format="dict",
                                                                                    print_info=False)
    rows = []
    for name, ep in info["named_endpoints"].items():
        params = ", ".join(
            f"`{p['parameter_name']}` ({p['python_type']['type'].replace('Literal[]', 'str: id or name')}"
            f"{', optional' if p['parameter_has_default'] else ''})" for p in ep["parameters"]) or "—"
        rows.append(f"| `{name}` | {params} |")
    text = HEADER + "\n".join(rows) + "\n\nEach one is the button or control of the same name in `ui/<tab>.py`.\n"
    (REPO / "docs" / "api.md").write_text(text)
    demo.close()
    print(f"docs/api.md: {len(rows)} endpoints")


if __name__ == "__main__":
    main()
