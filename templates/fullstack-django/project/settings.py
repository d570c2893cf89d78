"""Settings of a small Django app signed in with Scalekit: no database, no Django sessions or auth
app; the Scalekit session is an encrypted cookie (scalekit_auth.py)."""
import os
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
# .env next to manage.py, if any. Its values win over exported ones (override=True): many machines export
# SSL_CERT_FILE or REQUESTS_CA_BUNDLE, which would hide the local Scalekit environment's CA.
load_dotenv(BASE_DIR / ".env", override=True)
SECRET_KEY = os.environ["SESSION_SECRET"]  # Django's own signing key; the session cookie uses it too
DEBUG = False
APP_URL = os.environ.get("APP_URL", "http://localhost:3000")
ALLOWED_HOSTS = [urlsplit(APP_URL).hostname, "localhost", "127.0.0.1"]
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # region middleware
    "scalekit_auth.SessionMiddleware",
    # endregion middleware
]
ROOT_URLCONF = "project.urls"
DATABASES = {}
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
