"""A serving process loads its views and sets its startup objects aside from the collector."""

import gc
import importlib
import sys

import pytest


@pytest.mark.parametrize("entry", ["leadrelay.wsgi", "leadrelay.asgi"])
def test_the_server_entry_loads_the_views_and_freezes_the_startup_heap(entry):
    gc.unfreeze()
    sys.modules.pop(entry, None)
    try:
        module = importlib.import_module(entry)
        assert callable(module.application)
        assert gc.get_freeze_count() > 0
        assert "leadrelay.reporting.views" in sys.modules
    finally:
        gc.unfreeze()  # the other tests' objects stay collectable
