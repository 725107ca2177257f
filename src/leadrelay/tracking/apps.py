from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "leadrelay.tracking"
    label = "tracking"
