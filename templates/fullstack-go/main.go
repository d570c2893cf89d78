// net/http app: public home page, login/callback/logout, protected pages and API routes.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"log"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

type app struct {
	auth   *Auth
	cookie *sealer
}

type userKey struct{}

func main() {
	cfg, err := LoadConfig()
	if err != nil {
		log.Fatal(err)
	}
	cookies, err := newSealer(cfg.SessionSecret)
	if err != nil {
		log.Fatal(err)
	}
	a := &app{auth: NewAuth(cfg), cookie: cookies}
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	log.Printf("Listening on %s (127.0.0.1:%s)", cfg.AppURL, port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, a.routes()))
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /auth/login", a.login)
	mux.HandleFunc("GET /auth/callback", a.callback)
	mux.HandleFunc("/auth/logout", a.logout)
	mux.Handle("GET /{$}", a.loadSession(http.HandlerFunc(a.home)))
	mux.Handle("GET /dashboard", a.loadSession(a.requirePage(http.HandlerFunc(a.dashboard))))
	mux.Handle("GET /profile", a.loadSession(a.requirePage(http.HandlerFunc(a.profile))))
	mux.Handle("GET /api/me", a.loadSession(a.requireAPI(http.HandlerFunc(a.me))))
	mux.Handle("GET /api/admin", a.loadSession(a.requireAPI(a.requirePermission("organization:write", http.HandlerFunc(a.admin)))))
	mux.Handle("GET /api/orgs/{orgId}/notes", a.loadSession(a.requireAPI(http.HandlerFunc(a.notes))))
	return mux
}

// region session-middleware
// loadSession reads the sealed session cookie, refreshes an expired access token, and puts the user in the context.
// A bad or ended session is cleared; a Scalekit outage answers 503 and keeps the cookie.
func (a *app) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		appURL := a.auth.cfg.AppURL
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && strings.HasPrefix(r.URL.Path, "/api/") {
			// API callers may send an access token instead of the cookie; it has no ID token, so no email or name.
			claims, err := a.auth.Verify(r.Context(), bearer)
			if errors.Is(err, ErrUnavailable) {
				a.fail(w, r, err)
				return
			}
			if err == nil {
				r = withUser(r, UserOf(Session{}, claims))
			}
			next.ServeHTTP(w, r)
			return
		}
		session, found := unseal[Session](a.cookie, r, sessionCookie)
		if !found {
			next.ServeHTTP(w, r)
			return
		}
		current, claims, refreshed, err := a.auth.Authenticate(r.Context(), session)
		switch {
		case errors.Is(err, ErrInvalidToken), errors.Is(err, ErrSessionEnded):
			setCookie(w, appURL, sessionCookie, "", 0)
		case err != nil:
			a.fail(w, r, err)
			return
		default:
			if refreshed {
				sealed, err := a.cookie.seal(current)
				if err != nil {
					a.fail(w, r, err)
					return
				}
				setCookie(w, appURL, sessionCookie, sealed, sessionMaxAge)
			}
			r = withUser(r, UserOf(current, claims))
		}
		next.ServeHTTP(w, r)
	})
}

// endregion session-middleware

func withUser(r *http.Request, user User) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), userKey{}, &user))
}

func currentUser(r *http.Request) *User {
	user, _ := r.Context().Value(userKey{}).(*User)
	return user
}

// region guards
// requirePage sends a browser without a session to log in and come back here.
func (a *app) requirePage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r) == nil {
			http.Redirect(w, r, "/auth/login?returnTo="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireAPI answers 401 without a session, never a redirect.
func (a *app) requireAPI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r) == nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized", "message": "Log in first"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requirePermission reads the permissions of the verified access token (a change in Scalekit shows after a refresh).
func (a *app) requirePermission(permission string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user := currentUser(r); user != nil && slices.Contains(user.Permissions, permission) {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "missing": permission})
			return
		}
		render(w, http.StatusForbidden, "Forbidden", "<p>You need the <code>{{.}}</code> permission.</p>", permission)
	})
}

// endregion guards

// region login-route
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	loginURL, tx, err := a.auth.StartLogin(LoginOptions{ReturnTo: query.Get("returnTo"), Provider: query.Get("provider"),
		OrganizationID: query.Get("organization_id"), Domain: query.Get("domain"), LoginHint: query.Get("login_hint")})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sealed, err := a.cookie.seal(tx)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	setCookie(w, a.auth.cfg.AppURL, loginCookie, sealed, loginMaxAge)
	http.Redirect(w, r, loginURL, http.StatusFound)
}

// endregion login-route

// region callback-route
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	tx, found := unseal[LoginTransaction](a.cookie, r, loginCookie)
	setCookie(w, a.auth.cfg.AppURL, loginCookie, "", 0) // one attempt per login transaction
	var txp *LoginTransaction
	if found {
		txp = &tx
	}
	session, err := a.auth.FinishLogin(r.Context(), r.URL.Query(), txp)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sealed, err := a.cookie.seal(session)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	setCookie(w, a.auth.cfg.AppURL, sessionCookie, sealed, sessionMaxAge)
	http.Redirect(w, r, tx.ReturnTo, http.StatusFound)
}

// endregion callback-route

// region logout-route
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	var current *Session
	if session, found := unseal[Session](a.cookie, r, sessionCookie); found {
		current = &session
	}
	setCookie(w, a.auth.cfg.AppURL, sessionCookie, "", 0)
	// 303: a POST from the logout form continues as a GET to Scalekit's logout page.
	http.Redirect(w, r, a.auth.LogoutURL(current), http.StatusSeeOther)
}

// endregion logout-route

// region errors
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	api := strings.HasPrefix(r.URL.Path, "/api/")
	switch {
	case errors.Is(err, ErrLoginFailed):
		render(w, http.StatusBadRequest, "Login failed", `<p>{{.}}</p><p><a href="/auth/login">Log in again</a></p>`, err.Error())
	case errors.Is(err, ErrUnavailable):
		log.Print(err)
		w.Header().Set("Retry-After", "5")
		if api {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": "Sign-in service unavailable, retry"})
		} else {
			render(w, http.StatusServiceUnavailable, "Try again", "<p>The sign-in service is not answering. Try again in a moment.</p>", nil)
		}
	default:
		log.Print(err)
		if api {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal"})
		} else {
			render(w, http.StatusInternalServerError, "Error", "<p>Something went wrong.</p>", nil)
		}
	}
}

// endregion errors

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	if user := currentUser(r); user != nil {
		render(w, 200, "Home", `<p>Signed in as {{.Email}}.</p><p><a href="/dashboard">Dashboard</a></p>`, user)
		return
	}
	render(w, 200, "Home", `<p><a href="/auth/login">Log in</a> · <a href="/auth/login?provider=google">Log in with Google</a></p>
<form action="/auth/login"><label>Work email <input name="login_hint" type="email"></label> <button>Continue with SSO</button></form>`, nil)
}

func (a *app) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	render(w, 200, "Dashboard", `<p>Hello {{.Name}} ({{.Email}}).</p>
<p><a href="/profile">Profile</a> · <a href="/api/me">API: me</a> · <a href="/api/admin">API: admin</a>
· <a href="/api/orgs/{{or .Oid "none"}}/notes">API: my organization's notes</a></p>`, currentUser(r))
}

// region profile
func (a *app) profile(w http.ResponseWriter, r *http.Request) {
	user := currentUser(r)
	custom, _ := json.MarshalIndent(user.CustomClaims, "", "  ")
	w.Header().Set("Cache-Control", "no-store")
	render(w, 200, "Profile", `<dl><dt>Email</dt><dd>{{.User.Email}}</dd><dt>Name</dt><dd>{{.User.Name}}</dd>
<dt>User id</dt><dd><code>{{.User.Sub}}</code></dd><dt>Organization</dt><dd><code>{{or .User.Oid "none"}}</code></dd>
<dt>Roles</dt><dd>{{range .User.Roles}}{{.}} {{else}}none{{end}}</dd>
<dt>Permissions</dt><dd>{{range .User.Permissions}}{{.}} {{else}}none{{end}}</dd>
<dt>Custom claims</dt><dd><pre>{{.Custom}}</pre></dd></dl>`, map[string]any{"User": user, "Custom": string(custom)})
}

// endregion profile

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, currentUser(r))
}

func (a *app) admin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, map[string]bool{"admin": true})
}

// region org-data
// Organization-scoped data: a user reads the notes of the organization of their session, no other.
var notes = map[string][]string{
	"org_70000000000001001": {"Renew the Okta certificate in March"},
	"org_70000000000001002": {"Invite the finance team"},
}

func (a *app) notes(w http.ResponseWriter, r *http.Request) {
	orgID := r.PathValue("orgId")
	if orgID != currentUser(r).Oid {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": "Not your organization"})
		return
	}
	list := notes[orgID]
	if list == nil {
		list = []string{}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, 200, map[string]any{"organization": orgID, "notes": list})
}

// endregion org-data

func writeJSON(w http.ResponseWriter, status int, value any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(value)
}

var layout = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body><nav><a href="/">Home</a> · <a href="/dashboard">Dashboard</a> ·
<form action="/auth/logout" method="post" style="display:inline"><button>Log out</button></form></nav>
<h1>{{.Title}}</h1>{{template "body" .Data}}</body></html>`

// render fills a page; html/template escapes every value from a user or a token.
func render(w http.ResponseWriter, status int, title, body string, data any) {
	page := template.Must(template.Must(template.New("page").Parse(layout)).New("body").Parse(body))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	page.ExecuteTemplate(w, "page", map[string]any{"Title": title, "Data": data})
}
