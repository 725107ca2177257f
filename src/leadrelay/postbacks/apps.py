from django.apps import AppConfig


class PostbacksConfig(AppConfig):
    name = "leadrelay.postbacks"
    label = "postbacks"
    verbose_name = "Affiliate postbacks"
