"""Every code line of the README runs as written, and shows what it claims.

The shell lines run from a scratch copy of the repository root (``examples/`` copied, ``src/`` and
``benchmarks/`` linked), so the files they write (``runs/``, ``examples/model.safetensors``) stay out of
the tree; ``tapeout`` runs in-process through the console script's runner, ``python`` lines as
subprocesses. Setup lines (venv, pip, activating the venv) and the test command itself are the only
ones skipped, and the test checks that no other line is (``tapeout validate`` over the shared data
included: about ten seconds each).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tapeout.datadir import DATA_ENV, MARKERS, default_data_dir

ROOT = Path(__file__).resolve().parents[1]
#: the reference data as found from the checkout; the scratch root is elsewhere, so its lines are told
DATA = default_data_dir()
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: commands that set the environment up (or are this test suite) rather than show tapeout
SETUP_PREFIXES = (("python3", "-m", "venv"), (".venv/bin/pip", "install"), (".venv/bin/python", "-m", "pytest"),
                  (".",))

#: what a line claims, checked in its output (beyond: exit 0, no traceback, no warning, nothing too big)
CLAIMS = {
    "--ops": ("qkv_proj", "stored → computes"),
    "--hardware gaudi3": ("default to bf16",),
    "--model llama-3.1-405b": ("priced on the smallest group that holds it",),
    "explore examples/small-space.toml": ("4 evaluated",),
    "explore --report": ("Pareto front",),
    "quantize-error": ("total (3 tensors)",),
    "--compare-to": ("Compared with",),
    "--pp 4": ("4 batches in flight",),
    "--version": ("tapeout ",),
    "show examples/my-chip.toml": ("my-chip",),
    "--slo-tpot 0.02": ("goodput", "TTFT (ms)"),
    "--requests sample": ("64 requests",),
    "capacity --model": ("best (*): tp4",),
}


def _bash_commands() -> list[list[str]]:
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = re.sub(r"\\\n", " ", block)  # line continuations
        for line in text.splitlines():
            args = shlex.split(line, comments=True)
            part: list[str] = []
            for a in args + ["&&"]:
                if a == "&&":
                    if part:
                        cmds.append(part)
                    part = []
                else:
                    part.append(a)
    return cmds


def _is(cmd: list[str], prefixes: tuple[tuple[str, ...], ...]) -> bool:
    return any(tuple(cmd[: len(p)]) == p for p in prefixes)


COMMANDS = _bash_commands()
RUN = [c for c in COMMANDS if not _is(c, SETUP_PREFIXES)]


def test_the_readme_has_commands_and_skips_only_setup():
    skipped = [c for c in COMMANDS if _is(c, SETUP_PREFIXES)]
    assert len(RUN) >= 25
    assert all(c[0] in ("tapeout", ".venv/bin/tapeout", "python") for c in RUN), [c[0] for c in RUN]
    # the quick start's setup: two venvs, two pip installs, the test command, activating the venv
    assert sorted(c[0] for c in skipped) == sorted(["python3", "python3", ".venv/bin/pip", ".venv/bin/pip",
                                                    ".venv/bin/python", "."])


@pytest.fixture(scope="module")
def scratch_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns("model.safetensors"))
    for name in ("src", "benchmarks"):
        (root / name).symlink_to(ROOT / name)
    return root


def _run(cmd: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    if any((DATA / m).is_dir() for m in MARKERS):  # the checkout's reference data
        monkeypatch.setenv(DATA_ENV, str(DATA))
    else:  # none: validate's lines run the shipped sets and report the others absent
        monkeypatch.delenv(DATA_ENV, raising=False)
    if cmd[0] in ("tapeout", ".venv/bin/tapeout"):
        from tapeout.clicommand import run_app
        from tapeout.cli import app

        capsys.readouterr()
        rc = run_app(app, cmd[1:])
        out = capsys.readouterr()
        return rc, out.out + out.err
    res = subprocess.run([sys.executable, *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize("cmd", [pytest.param(c, id=" ".join(c)[:80]) for c in RUN])
def test_readme_line_runs_as_written(cmd, scratch_root, capsys, monkeypatch):
    rc, out = _run(cmd, scratch_root, capsys, monkeypatch)
    line = " ".join(cmd)
    assert rc == 0, f"{line}\n{out[-2000:]}"
    assert "Traceback" not in out and "internal error" not in out
    # an example shows what it claims: it fits, runs within the model's trained context, warns of nothing
    assert "does NOT fit" not in out and "warning:" not in out, out[-2000:]
    assert not re.search(r"\b(nan|inf)\b", out.lower().replace("info", "")), out[-2000:]
    for key, needles in CLAIMS.items():
        if key in line:
            for n in needles:
                assert n in out, f"{line}: expected {n!r}\n{out[-2000:]}"


def test_readme_python_block_runs():
    (code,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)  # noqa: S102 - the README's own example
    p = ns["p"]
    assert p.memory.fits and p.ttft_s > 0 and p.tpot_s > 0 and p.warnings == ()
    assert p.to_dict()["inputs"]["tp"] == 4
