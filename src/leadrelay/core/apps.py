from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "leadrelay.core"
    label = "core"
