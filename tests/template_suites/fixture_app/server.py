"""A stand-in app for the launcher's own test: it reports the environment it was started with."""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

NAMES = ["PORT", "APP_URL", "SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "NODE_EXTRA_CA_CERTS", "GREETING"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"env": {name: os.environ.get(name) for name in NAMES},
                           "secret_length": len(os.environ.get("SESSION_SECRET", "")),
                           "installed": open("installed.txt").read(), "pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
