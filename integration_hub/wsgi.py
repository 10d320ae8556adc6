import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integration_hub.settings")
application = get_wsgi_application()
import_module(settings.ROOT_URLCONF)  # the views and what they import, before the freeze
# What is loaded now (Django, the apps, their URLs) lives as long as the process: frozen, the
# garbage collector stops walking it on every full collection, which cost an ingest batch
# ~13 % of its CPU (tests/bench/profile_ingest.py).
gc.freeze()
