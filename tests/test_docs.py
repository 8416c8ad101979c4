"""The README's Python tour runs, and every docstring example prints what it says."""

import doctest
import os
import re

import pytest

import importlib



DOC_MODULES = ["fpsim.formats.float", "fpsim.formats.fixed", "fpsim.formats.posit",
               "fpsim.formats.radix4", "fpsim.formats.exponent", "fpsim.formats.block",
               "fpsim.formats.registry", "fpsim._args", "fpsim.quantize", "fpsim.arith",
               "fpsim.accum", "fpsim.engines", "fpsim.probe", "fpsim.gemm", "fpsim.conv", "fpsim.scaling", "fpsim.validate",
               "fpsim.data", "fpsim.nn", "fpsim.nn.layers", "fpsim.nn.models", "fpsim.nn.optim",
               "fpsim.nn.quantizers", "fpsim.nn.recipe", "fpsim.nn.recipes",
               "fpsim.nn.training", "fpsim.sweep", "fpsim.sweep.spec", "fpsim.sweep.tasks",
               "fpsim.sweep.execute", "fpsim.sweep.plot"]

ROOT = os.path.dirname(os.path.dirname(__file__))


def test_readme_tour_runs():
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("name", DOC_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)     # fpsim.quantize etc. are also function names
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_readme_named_formats_table_is_what_fpsim_formats_prints():
    from fpsim.cli import formats_table
    text = open(os.path.join(ROOT, "README.md")).read()
    assert formats_table() in text


def test_ci_runs_the_two_commands_readme_starts_with():
    text = open(os.path.join(ROOT, "README.md")).read()
    first = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first.strip().splitlines()]
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    install, main_job = commands[0].split(" && ")
    assert install.replace("pip install -e", "pip install -q -e") in ci
    assert main_job in ci and commands[1] in ci
