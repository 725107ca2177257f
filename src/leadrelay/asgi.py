import os

from django.core.asgi import get_asgi_application

from leadrelay.core.startup import serving_process_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadrelay.settings")
application = get_asgi_application()

serving_process_ready()
