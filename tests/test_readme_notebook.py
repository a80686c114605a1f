"""README's "In a notebook" example runs as it is written (on the session of the tests)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- notebook-example: tests/test_readme_notebook.py runs this block -->"


def notebook_example() -> str:
    text = README.read_text()
    after = text[text.index(MARKER) + len(MARKER) :]
    match = re.match(r"\s*```python\n(.*?)\n```", after, re.DOTALL)
    assert match, "no python block after the marker"
    return match.group(1)


def test_readme_notebook_example_runs(spark, tmp_path, capsys):
    code = notebook_example().replace('"/tmp/', f'"{tmp_path}/')
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    rmse = float(re.search(r"test RMSE (\S+);", printed).group(1))
    assert 0.5 < rmse < 1.2, printed
    assert "CV RMSE per regParam:" in printed and "validation NDCG@10" in printed
    assert (tmp_path / "wals-model" / "metadata").is_dir()
    assert (tmp_path / "wals-pipeline" / "stages").is_dir()
