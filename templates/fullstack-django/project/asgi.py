"""ASGI entry point: uvicorn project.asgi:application --host 127.0.0.1 --port 3000"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_asgi_application()
