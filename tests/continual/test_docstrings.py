"""Every docstring example in the continual modules runs and holds."""

import doctest
import importlib

import pytest

MODULES = ["config.continual", "continual.buffer", "continual.scenarios", "continual.strategies", "continual.measures",
           "continual.loop", "continual.task_data"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    module = importlib.import_module(f"trainwright.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
