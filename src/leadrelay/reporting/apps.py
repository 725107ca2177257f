from django.apps import AppConfig


class ReportingConfig(AppConfig):
    name = "leadrelay.reporting"
    label = "reporting"
