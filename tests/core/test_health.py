from django.db import OperationalError
from django.test import Client


def test_healthz_answers_200_when_the_database_answers(db) -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "up",
        "set_aside": {
            "click": 0,
            "cpc": 0,
            "lead_hold": 0,
            "conversion_hold": 0,
            "report_summary": 0,
        },
    }


def test_healthz_answers_503_when_the_database_does_not(db, monkeypatch) -> None:
    from django.db import connection

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken_cursor)
        response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


def test_healthz_answers_head_for_load_balancers(db) -> None:
    assert Client().head("/healthz").status_code == 200
