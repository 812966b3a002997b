"""The documentation's examples: self-contained snippets run, and every recorded result a
benchmark command in docs/benchmarks.md reads exists."""

import glob
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path, lang):
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / path).read_text(), re.S)


# Snippets that need nothing but the package (the others start from a fitted model or the
# user's own rows, and the estimator tests cover those calls).
SELF_CONTAINED = [("docs/codecs.md", 0), ("docs/inputs.md", 0), ("docs/rewards.md", 0)]


@pytest.mark.parametrize("path, index", SELF_CONTAINED)
def test_self_contained_snippets_run(path, index):
    code = _blocks(path, "python")[index]
    namespace = {}
    exec(compile(code, f"{path}[{index}]", "exec"), namespace)
    if path == "docs/inputs.md":            # the values the snippet's comments show
        s, df = namespace["s"], namespace["df"]
        assert s.kinds_ == {"city": "cat", "temp": "num"}
        assert s.to_text(df)[0] == "city: Oslo | temp: 3.25"
    if path == "docs/rewards.md":
        reward = namespace["trl_reward"]("abs", scale=1.0)
        out = reward(prompts=["x", "y", "z"], completions=["3.5", "oops", "1"], target=[3.0, 1.0, 2.0])
        assert out == [-0.5, -2.0, -1.0]
        assert namespace["reward"](prompts=["p"], completions=["about 4.5 units"], target=[4.0]) == [-0.5]
        # its last number had been the exponent: "1e3" scored as a perfect 3
        assert namespace["reward"](prompts=["p"], completions=["1e3"], target=[3.0]) == [-997.0]


def _result_reads():
    """(command, pattern) for each result file a --table/--summary command reads."""
    reads = []
    for block in _blocks("docs/benchmarks.md", "bash"):
        env = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if re.match(r"^[A-Z]+=\S+$", line):
                name, value = line.split("=", 1)
                env[name] = value
            if not line.startswith("python") or not re.search(r"--(table|summary)\b", line):
                continue
            if "$(" in line:                 # a command substitution builds the list itself
                continue
            args = shlex.split(line)
            start = max(i for i, a in enumerate(args) if a in ("--table", "--summary")) + 1
            for arg in args[start:]:
                if arg.startswith("--"):
                    break
                for name, value in env.items():
                    arg = arg.replace(f"${name}", value)
                for expanded in _braces(arg):
                    reads.append((line, expanded))
    return reads


def _braces(pattern):
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    return [p for part in m.group(1).split(",")
            for p in _braces(pattern[:m.start()] + part + pattern[m.end():])]


def test_benchmark_commands_read_recorded_results():
    reads = _result_reads()
    assert len(reads) > 20                   # the parser found the commands
    missing = [(cmd, pat) for cmd, pat in reads
               if "$" in pat or not glob.glob(str(ROOT / pat))]
    assert not missing, missing
