from django.apps import AppConfig


class OffersConfig(AppConfig):
    name = "leadrelay.offers"
    label = "offers"
