from django.apps import AppConfig


class PortalsConfig(AppConfig):
    name = "leadrelay.portals"
    label = "portals"
