from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "leadrelay.ledger"
    label = "ledger"
