"""scalekit.frameworks.fastapi.ScalekitAuth, wired as its docstring shows."""
import os

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from scalekit.frameworks.fastapi import ScalekitAuth

APP_URL = os.environ["APP_URL"]
auth = ScalekitAuth(env_url=os.environ["SCALEKIT_ENVIRONMENT_URL"], client_id=os.environ["SCALEKIT_CLIENT_ID"],
                    client_secret=os.environ["SCALEKIT_CLIENT_SECRET"], redirect_uri=APP_URL + "/callback",
                    cookie_encryption_secret=os.environ["SESSION_SECRET"], cookie_secure=APP_URL.startswith("https:"),
                    post_login_redirect="/dashboard", post_logout_redirect_uri=APP_URL + "/")
app = FastAPI()
auth.install(app)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/", response_class=HTMLResponse)
def home():
    return "<h1>Home</h1>"


@app.get("/dashboard", response_class=HTMLResponse)
def dashboard(user: dict = Depends(auth.requires_auth)):
    return f"<h1>Dashboard</h1><p>{user['sub']}</p>"


@app.get("/api/me")
def me(user: dict = Depends(auth.requires_auth)):
    return {"sub": user["sub"], "oid": user.get("oid")}
