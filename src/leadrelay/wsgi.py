import os

from django.core.wsgi import get_wsgi_application

from leadrelay.core.startup import serving_process_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadrelay.settings")
application = get_wsgi_application()

serving_process_ready()
