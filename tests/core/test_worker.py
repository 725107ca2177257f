import threading

from leadrelay.core.management.commands.worker import _periodic

calls: list[int] = []
stop = threading.Event()


def job() -> None:
    calls.append(1)
    if len(calls) == 2:
        raise RuntimeError("a failing run does not stop the next")
    if len(calls) >= 3:
        stop.set()


def test_periodic_jobs_run_on_their_interval_and_survive_failures(db) -> None:
    thread = threading.Thread(target=_periodic, args=(f"{__name__}.job", 0.01, stop))
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(calls) == 3


def test_the_configured_sweeps_import(settings) -> None:
    from django.utils.module_loading import import_string

    for path, every in settings.LEADRELAY_PERIODIC_JOBS:
        assert callable(import_string(path)) and every > 0
