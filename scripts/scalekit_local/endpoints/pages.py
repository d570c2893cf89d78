"""HTML pages: string.Template files from templates/, every value HTML-escaped."""
from __future__ import annotations

import functools
from html import escape
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PROVIDER_LABELS = {
    "google": "Google", "github": "GitHub", "microsoft": "Microsoft", "gitlab": "GitLab",
    "linkedin": "LinkedIn", "salesforce": "Salesforce",
}
HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def render(name: str, title: str, status: int = 200, raw: dict[str, str] | None = None, **values: str) -> HTMLResponse:
    """Render templates/<name> inside base.html. `values` are escaped; `raw` is trusted HTML built here."""
    fields = {k: escape(str(v)) for k, v in values.items()}
    fields.update(raw or {})
    body = _template(name).safe_substitute(fields)
    page = _template("base.html").safe_substitute(title=escape(title), body=body)
    return HTMLResponse(page, status_code=status, headers=HEADERS)


def error_html(message: str | None) -> str:
    return f'<p class="error" role="alert">{escape(message)}</p>' if message else ""


def message_page(heading: str, message: str, status: int = 200, details: dict[str, str] | None = None) -> HTMLResponse:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in (details or {}).items())
    return render("message.html", heading, status, raw={"details": f"<dl>{rows}</dl>" if rows else ""},
                  heading=heading, message=message)


def error_page(error: str, description: str, status: int = 400) -> HTMLResponse:
    """For requests we must not redirect (unknown client, unregistered redirect URI, ...)."""
    return message_page("This request cannot be completed", description, status, {"error": error})


def provider_buttons(request_id: str, providers) -> str:
    if not providers:
        return ""
    links = "".join(
        f'<a class="button secondary" id="provider-{escape(p.provider)}" '
        f'href="/ui/social?r={escape(request_id)}&amp;provider={escape(p.provider)}">'
        f"Continue with {escape(PROVIDER_LABELS[p.provider])}</a>"
        for p in providers
    )
    return f'<div class="divider">or</div>{links}'
