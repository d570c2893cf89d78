"""scalekit.frameworks.flask.ScalekitAuth, wired as its docstring shows."""
import os

from flask import Flask, jsonify
from scalekit.frameworks.flask import ScalekitAuth

APP_URL = os.environ["APP_URL"]
app = Flask(__name__)
auth = ScalekitAuth(app, env_url=os.environ["SCALEKIT_ENVIRONMENT_URL"], client_id=os.environ["SCALEKIT_CLIENT_ID"],
                    client_secret=os.environ["SCALEKIT_CLIENT_SECRET"], redirect_uri=APP_URL + "/callback",
                    cookie_encryption_secret=os.environ["SESSION_SECRET"], cookie_secure=APP_URL.startswith("https:"),
                    post_login_redirect="/dashboard", post_logout_redirect_uri=APP_URL + "/")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/")
def home():
    return "<h1>Home</h1>"


@app.get("/dashboard")
@auth.requires_auth
def dashboard():
    return f"<h1>Dashboard</h1><p>{auth.current_user['sub']}</p>"


@app.get("/api/me")
@auth.requires_auth
def me():
    return jsonify(sub=auth.current_user["sub"], oid=auth.current_user.get("oid"))
