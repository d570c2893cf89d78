from django.urls import include, path

from project import views

urlpatterns = [
    # region urls
    path("auth/", include("scalekit_auth")),  # /auth/login, /auth/callback, /auth/logout
    # endregion urls
    path("", views.home),
    path("healthz", views.healthz),
    path("dashboard", views.dashboard),
    path("profile", views.profile),
    path("api/me", views.me),
    path("api/admin", views.admin),
    path("api/orgs/<str:org_id>/notes", views.notes),
]
