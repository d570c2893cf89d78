"""scalekit.frameworks.django, wired as its docstrings show, in one file (settings, URLs, views)."""
import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import include, path

APP_URL = os.environ["APP_URL"]
settings.configure(
    DEBUG=False, SECRET_KEY=os.environ["SESSION_SECRET"], ROOT_URLCONF=__name__, ALLOWED_HOSTS=["localhost", "127.0.0.1"],
    MIDDLEWARE=["scalekit.frameworks.django.ScalekitAuthMiddleware"],
    SCALEKIT_ENV_URL=os.environ["SCALEKIT_ENVIRONMENT_URL"], SCALEKIT_CLIENT_ID=os.environ["SCALEKIT_CLIENT_ID"],
    SCALEKIT_CLIENT_SECRET=os.environ["SCALEKIT_CLIENT_SECRET"], SCALEKIT_REDIRECT_URI=APP_URL + "/callback",
    SCALEKIT_COOKIE_ENCRYPTION_SECRET=os.environ["SESSION_SECRET"], SCALEKIT_COOKIE_SECURE=APP_URL.startswith("https:"),
    SCALEKIT_POST_LOGIN_REDIRECT="/dashboard", SCALEKIT_POST_LOGOUT_REDIRECT_URI=APP_URL + "/",
)
from scalekit.frameworks.django import login_required  # noqa: E402  (reads settings)


def healthz(request):
    return JsonResponse({"status": "ok"})


def home(request):
    return HttpResponse("<h1>Home</h1>")


@login_required
def dashboard(request):
    return HttpResponse(f"<h1>Dashboard</h1><p>{request.scalekit_user['sub']}</p>")


@login_required
def me(request):
    return JsonResponse({"sub": request.scalekit_user["sub"], "oid": request.scalekit_user.get("oid")})


urlpatterns = [path("", include("scalekit.frameworks.django")), path("healthz", healthz), path("", home),
               path("dashboard", dashboard), path("api/me", me)]
application = get_asgi_application()
