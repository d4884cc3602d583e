"""Execute the docs' notebooks in place, so that they are read with their outputs.

    python docs/execute.py docs/example.ipynb docs/paper.ipynb

Runs each notebook's code cells top to bottom in one namespace, as a Jupyter
kernel would (in a fresh temporary folder, so files a notebook writes do not
land in the repository), and writes back into the file what
each cell printed (stdout, stderr), the value of its last expression, and every
matplotlib figure it drew (PNG) — nbformat 4, readable by Jupyter, VS Code and
GitHub. No Jupyter installation is needed. A cell that raises stops the run
and leaves the file unchanged (exit status 1, the cell and the error named).

``--tiny`` runs with ``TINY = True`` (the notebooks' own switch to tiny
settings, as the tests use) and writes the result to ``--out`` instead of in
place, so the committed notebooks always carry their full-size outputs.
"""
from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path



def _run_cell(src: str, ns: dict, name: str) -> object:
    """Execute a cell; the value of its last expression (as a kernel shows it)."""
    tree = ast.parse(src, name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, "exec"), ns)
    return eval(compile(last, name, "eval"), ns) if last is not None else None


def _figures() -> list[dict]:
    """Every open matplotlib figure as a display_data output (then closed)."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    import matplotlib.pyplot as plt
    out = []
    for num in plt.get_fignums():
        fig = plt.figure(num)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        out.append({"output_type": "display_data", "metadata": {},
                    "data": {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"),
                             "text/plain": [f"<Figure {fig.get_figwidth():g}x"
                                            f"{fig.get_figheight():g} in>"]}})
    plt.close("all")
    return out


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def execute(path: Path, tiny: bool = False) -> tuple[dict, float]:
    """The notebook at ``path`` executed (as a dict), and the seconds it took."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.close("all")                # only the notebook's own figures are its outputs
    nb = json.loads(Path(path).read_text())
    ns: dict = {"__name__": "__main__"}
    count, t0 = 0, time.time()
    old = os.getcwd()
    os.chdir(tempfile.mkdtemp(prefix="notebook-"))
    try:
        for k, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            if tiny:
                src = src.replace("TINY = False", "TINY = True")
            out, err = io.StringIO(), io.StringIO()
            count += 1
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    value = _run_cell(src, ns, f"{Path(path).name} cell {k}")
            except Exception as e:
                raise RuntimeError(f"{path}: code cell {count} raised {type(e).__name__}: "
                                   f"{e}") from e
            outputs = [{"output_type": "stream", "name": name, "text": _lines(s.getvalue())}
                       for name, s in (("stdout", out), ("stderr", err)) if s.getvalue()]
            outputs += _figures()
            if value is not None and not type(value).__module__.startswith("matplotlib"):
                outputs.append({"output_type": "execute_result", "execution_count": count,
                                "metadata": {}, "data": {"text/plain": _lines(repr(value))}})
            cell["outputs"], cell["execution_count"] = outputs, count
    finally:
        os.chdir(old)
    return nb, time.time() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files to execute")
    p.add_argument("--tiny", action="store_true",
                   help="run with TINY = True (seconds; the numbers are meaningless); needs "
                        "--out")
    p.add_argument("--out", type=Path, default=None,
                   help="write the executed notebooks into this folder instead of in place")
    args = p.parse_args(argv)
    if args.tiny and args.out is None:
        p.error("--tiny writes to --out only (the committed notebooks keep full-size outputs)")
    for nbp in args.notebooks:
        if not nbp.is_file():
            p.error(f"{nbp} is not a file")
        try:
            nb, secs = execute(nbp, args.tiny)
        except RuntimeError as e:
            print(f"execute.py: error: {e}", file=sys.stderr)
            return 1
        dest = nbp if args.out is None else args.out / nbp.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"executed {nbp} in {secs:.0f} s; wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
