from django.apps import AppConfig


class DistributionConfig(AppConfig):
    name = "leadrelay.distribution"
    label = "distribution"
