from django.apps import AppConfig
from django.urls import register_converter

from leadrelay.core.bounds import IdConverter


class CoreConfig(AppConfig):
    name = "leadrelay.core"
    label = "core"

    def ready(self) -> None:
        # `<id:…>` in URLs (core/bounds.py). Once per process, here rather than in urls.py,
        # which may be imported afresh (Django 6 refuses a converter registered twice).
        register_converter(IdConverter, "id")
