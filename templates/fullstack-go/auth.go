// All the Scalekit wiring: login URL, callback, token checks, refresh, logout URL.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	scalekit "github.com/scalekit-inc/scalekit-sdk-go/v2"
)

// region config
type Config struct {
	AppURL         *url.URL // public origin of this app, e.g. https://app.example.com
	EnvironmentURL string
	ClientID       string
	ClientSecret   string
	SessionSecret  string
}

func LoadConfig() (Config, error) {
	var missing []string
	for _, name := range []string{"SCALEKIT_ENVIRONMENT_URL", "SCALEKIT_CLIENT_ID", "SCALEKIT_CLIENT_SECRET", "SESSION_SECRET"} {
		if os.Getenv(name) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("set %s (see .env.example)", strings.Join(missing, ", "))
	}
	rawAppURL := cmp.Or(os.Getenv("APP_URL"), "http://localhost:"+cmp.Or(os.Getenv("PORT"), "3000"))
	appURL, err := url.Parse(rawAppURL)
	if err != nil || appURL.Host == "" {
		return Config{}, fmt.Errorf("APP_URL is not a URL: %q", rawAppURL)
	}
	if appURL.Scheme != "https" && !isLoopback(appURL.Hostname()) {
		return Config{}, errors.New("APP_URL must be https:// (plain http is only for localhost): session cookies are Secure")
	}
	return Config{
		AppURL:         &url.URL{Scheme: appURL.Scheme, Host: appURL.Host},
		EnvironmentURL: strings.TrimRight(os.Getenv("SCALEKIT_ENVIRONMENT_URL"), "/"), // a trailing slash breaks the issuer check
		ClientID:       os.Getenv("SCALEKIT_CLIENT_ID"),
		ClientSecret:   os.Getenv("SCALEKIT_CLIENT_SECRET"),
		SessionSecret:  os.Getenv("SESSION_SECRET"),
	}, nil
}

// endregion config

var (
	// ErrUnavailable: Scalekit could not be reached or answered with a server error. Answer 503, keep the session.
	ErrUnavailable = errors.New("Scalekit is unreachable or failing")
	// ErrLoginFailed: bad state, replayed code, failed ID token check. Show an error (400) and start again.
	ErrLoginFailed = errors.New("login failed")
	// ErrSessionEnded: the refresh token was revoked, reused or expired. Clear the session and log in again.
	ErrSessionEnded = errors.New("session ended")
	// ErrInvalidToken: forged, wrong issuer or audience, malformed. Refuse it (401).
	ErrInvalidToken = errors.New("invalid token")
	// ErrTokenExpired: a valid token that has expired. Refresh it.
	ErrTokenExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
)

type LoginTransaction struct {
	State        string `json:"state"`
	Nonce        string `json:"nonce"`
	CodeVerifier string `json:"codeVerifier"`
	ReturnTo     string `json:"returnTo"`
}

type Session struct {
	ID           string `json:"id"` // new at every login, so a session id planted before login is never reused
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	IDToken      string `json:"idToken"` // verified at login; kept for the profile and for logout's id_token_hint
}

type LoginOptions struct {
	ReturnTo       string
	Provider       string // social login: skip Scalekit's login page
	OrganizationID string // enterprise SSO of one organization
	Domain         string // enterprise SSO of the organization that owns this email domain
	LoginHint      string // the user's email, to pre-fill the login page or find their SSO
}

var (
	socialProviders = []string{"google", "github", "microsoft", "gitlab", "linkedin", "salesforce"}
	organizationID  = regexp.MustCompile(`^org_[A-Za-z0-9]+$`)
	emailDomain     = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)
	email           = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)
	oauthErrorCode  = regexp.MustCompile(`^[a-z_]{1,40}$`)
)

const (
	refreshEarlyBy    = 10 * time.Second // refresh a token this close to expiry, so it does not expire on its way to an API
	reuseWindow       = time.Minute      // how long a rotated refresh token still maps to its successor in this process
	verifiedCacheSize = 10000            // tokens whose signature was checked, kept until they expire
)

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type refreshResult struct {
	done    chan struct{}
	session Session
	err     error
	until   time.Time
}

type Auth struct {
	cfg        Config
	sk         scalekit.Scalekit
	mu         sync.Mutex
	refreshing map[string]*refreshResult // by the refresh token being used: one refresh at a time
	verified   sync.Map                  // token -> claims: one signature check per token, until it expires
	verifiedN  atomic.Int64
}

func NewAuth(cfg Config) *Auth {
	return &Auth{
		cfg:        cfg,
		sk:         scalekit.NewScalekitClient(cfg.EnvironmentURL, cfg.ClientID, cfg.ClientSecret),
		refreshing: map[string]*refreshResult{},
	}
}

func (a *Auth) redirectURI() string { return a.cfg.AppURL.String() + "/auth/callback" }

// region login
// StartLogin returns the Scalekit authorization URL, and what the callback needs to check it (kept in a sealed cookie).
func (a *Auth) StartLogin(options LoginOptions) (string, LoginTransaction, error) {
	pkce, err := a.sk.GeneratePKCEConfiguration(scalekit.PKCEOptions{}) // S256
	if err != nil {
		return "", LoginTransaction{}, err
	}
	tx := LoginTransaction{State: randomToken(), Nonce: randomToken(), CodeVerifier: pkce.CodeVerifier,
		ReturnTo: a.SafeReturnTo(options.ReturnTo)}
	authOptions := scalekit.AuthorizationUrlOptions{
		Scopes:              []string{"openid", "profile", "email", "offline_access"}, // offline_access: a refresh token
		State:               tx.State,
		Nonce:               tx.Nonce,
		CodeChallenge:       pkce.CodeChallenge,
		CodeChallengeMethod: pkce.CodeChallengeMethod,
	}
	switch {
	case options.Provider != "":
		if !slices.Contains(socialProviders, options.Provider) {
			return "", tx, fmt.Errorf("%w: unknown provider %q", ErrLoginFailed, options.Provider)
		}
		authOptions.Provider = options.Provider
	case options.OrganizationID != "":
		if !organizationID.MatchString(options.OrganizationID) {
			return "", tx, fmt.Errorf("%w: organization_id looks wrong", ErrLoginFailed)
		}
		authOptions.OrganizationId = options.OrganizationID
	default:
		if options.Domain != "" {
			if !emailDomain.MatchString(options.Domain) {
				return "", tx, fmt.Errorf("%w: domain looks wrong", ErrLoginFailed)
			}
			authOptions.DomainHint = strings.ToLower(options.Domain)
		}
		if options.LoginHint != "" {
			if !email.MatchString(options.LoginHint) {
				return "", tx, fmt.Errorf("%w: login_hint is not an email address", ErrLoginFailed)
			}
			authOptions.LoginHint = options.LoginHint
		}
	}
	loginURL, err := a.sk.GetAuthorizationUrl(a.redirectURI(), authOptions)
	if err != nil {
		return "", tx, err
	}
	return loginURL.String(), tx, nil
}

// endregion login

// region return-to
// SafeReturnTo keeps same-site paths only: "/dashboard?tab=1" is kept; "//evil.example", "https://…" and
// "/\evil" become the default.
func (a *Auth) SafeReturnTo(value string) string {
	const fallback = "/dashboard"
	if !strings.HasPrefix(value, "/") || strings.HasPrefix(value, "//") || strings.ContainsAny(value, "\\") ||
		strings.IndexFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fallback
	}
	parsed, err := a.cfg.AppURL.Parse(value)
	if err != nil || parsed.Scheme != a.cfg.AppURL.Scheme || parsed.Host != a.cfg.AppURL.Host {
		return fallback
	}
	return parsed.RequestURI() + fragment(parsed)
}

// endregion return-to

func fragment(u *url.URL) string {
	if u.Fragment == "" {
		return ""
	}
	return "#" + u.EscapedFragment()
}

// region callback
// FinishLogin checks state, exchanges the code (with the PKCE verifier) and checks the ID token. A new session each time.
func (a *Auth) FinishLogin(ctx context.Context, query url.Values, tx *LoginTransaction) (Session, error) {
	if e := query.Get("error"); e != "" {
		// Show the OAuth error code only: error_description is text anyone can put in a link to this page.
		if !oauthErrorCode.MatchString(e) {
			e = "unknown"
		}
		return Session{}, fmt.Errorf("%w: Scalekit did not sign you in (%s)", ErrLoginFailed, e)
	}
	if tx == nil || len(query["state"]) != 1 || query.Get("state") != tx.State {
		return Session{}, fmt.Errorf("%w: the login state does not match this browser; start the login again", ErrLoginFailed)
	}
	if len(query["code"]) != 1 || query.Get("code") == "" {
		return Session{}, fmt.Errorf("%w: the callback has no code", ErrLoginFailed)
	}
	result, err := a.sk.AuthenticateWithCode(ctx, query.Get("code"), a.redirectURI(),
		scalekit.AuthenticationOptions{CodeVerifier: tx.CodeVerifier})
	if err != nil {
		var skErr *scalekit.Error
		if errors.As(err, &skErr) && skErr.StatusCode == 400 {
			return Session{}, fmt.Errorf("%w: the code is invalid, expired or already used; log in again", ErrLoginFailed)
		}
		if unreachable(err) {
			return Session{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return Session{}, fmt.Errorf("%w: the ID token is invalid: %v", ErrLoginFailed, err)
	}
	// The SDK checked the ID token's signature and expiry; iss, aud, nbf and nonce are ours to check.
	if err := a.checkClaims(result.User.Claims); err != nil {
		return Session{}, fmt.Errorf("%w: the ID token is invalid: %v", ErrLoginFailed, err)
	}
	if result.User.Claims["nonce"] != tx.Nonce {
		return Session{}, fmt.Errorf("%w: the ID token's nonce does not match this login", ErrLoginFailed)
	}
	if result.RefreshToken == "" {
		return Session{}, fmt.Errorf("%w: no refresh token: request the offline_access scope", ErrLoginFailed)
	}
	return Session{ID: randomToken(), AccessToken: result.AccessToken, RefreshToken: result.RefreshToken,
		IDToken: result.IdToken}, nil
}

// endregion callback

// region verify
// Verify checks a Scalekit JWT: signature and expiry (the SDK), issuer, audience and nbf (here; the SDK's
// ValidateToken checks none of them). ErrInvalidToken (ErrTokenExpired when only expired) and ErrUnavailable differ, so "the token is
// bad" (401) and "Scalekit is down" (503) get different answers.
func (a *Auth) Verify(ctx context.Context, token string) (scalekit.Claims, error) {
	if known, ok := a.verified.Load(token); ok {
		claims := known.(scalekit.Claims)
		if exp, _ := claims["exp"].(float64); time.Now().Unix() < int64(exp) {
			return claims, nil
		}
		a.verified.Delete(token)
		a.verifiedN.Add(-1)
	}
	claims, err := a.sk.ValidateToken(ctx, token)
	switch {
	case errors.Is(err, scalekit.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil && unreachable(err):
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if err := a.checkClaims(claims); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if a.verifiedN.Add(1) > verifiedCacheSize { // full: start again rather than track the oldest
		a.verified.Clear()
		a.verifiedN.Store(1)
	}
	a.verified.Store(token, claims)
	return claims, nil
}

// checkClaims checks what the SDK leaves out: the issuer, the audience and nbf.
func (a *Auth) checkClaims(claims scalekit.Claims) error {
	if nbf, ok := claims["nbf"].(float64); ok && time.Now().Unix() < int64(nbf) {
		return fmt.Errorf("not valid before %d", int64(nbf))
	}
	if claims["iss"] != a.cfg.EnvironmentURL {
		return fmt.Errorf("issuer %v is not %s", claims["iss"], a.cfg.EnvironmentURL)
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud == a.cfg.ClientID {
			return nil
		}
	case []any:
		if slices.Contains(aud, any(a.cfg.ClientID)) {
			return nil
		}
	}
	return fmt.Errorf("audience %v does not include %s", claims["aud"], a.cfg.ClientID)
}

// unreachable reports errors of the network, of /keys or of the token endpoint, as opposed to a bad token:
// the SDK fetches the keys (and caches them) before it parses the token.
func unreachable(err error) bool {
	var netErr *url.Error
	var skErr *scalekit.Error
	var syntaxErr *json.SyntaxError
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &skErr) && (skErr.StatusCode >= 500 || skErr.StatusCode == 429 || skErr.StatusCode == 404)) ||
		errors.As(err, &syntaxErr) || errors.Is(err, scalekit.ErrJwksEmptyKeySet)
}

// endregion verify

// region refresh
// Authenticate returns the session with a valid access token, refreshed when it has expired, and the token's claims.
// A rotated refresh token may be used once, so concurrent requests of one session share one refresh, and requests
// that still carry the old cookie get its successor for a minute. This works inside one process; with several
// processes, keep sessions in a shared store (Redis) or use sticky sessions, or a second process reusing the old
// refresh token makes Scalekit revoke the session.
func (a *Auth) Authenticate(ctx context.Context, session Session) (Session, scalekit.Claims, bool, error) {
	return a.authenticate(ctx, session, true)
}

func (a *Auth) authenticate(ctx context.Context, session Session, refreshEarly bool) (Session, scalekit.Claims, bool, error) {
	claims, err := a.Verify(ctx, session.AccessToken)
	if err == nil {
		exp, _ := claims["exp"].(float64)
		if !refreshEarly || time.Until(time.Unix(int64(exp), 0)) > refreshEarlyBy {
			return session, claims, false, nil
		}
	} else if !errors.Is(err, ErrTokenExpired) {
		return session, nil, false, err
	}
	fresh, refreshErr := a.refreshOnce(ctx, session)
	if refreshErr != nil {
		if err == nil && errors.Is(refreshErr, ErrUnavailable) {
			return session, claims, false, nil // still valid for a few seconds: an outage does not sign the user out yet
		}
		return session, nil, false, refreshErr
	}
	// A successor from a minute ago may have expired too: follow the chain (without refreshing early).
	fresh, claims, _, err = a.authenticate(ctx, fresh, false)
	return fresh, claims, true, err
}

func (a *Auth) refreshOnce(ctx context.Context, session Session) (Session, error) {
	a.mu.Lock()
	now := time.Now()
	for token, call := range a.refreshing {
		if !call.until.IsZero() && call.until.Before(now) {
			delete(a.refreshing, token)
		}
	}
	call, found := a.refreshing[session.RefreshToken]
	if !found {
		call = &refreshResult{done: make(chan struct{})}
		a.refreshing[session.RefreshToken] = call
	}
	a.mu.Unlock()
	if !found {
		call.session, call.err = a.refresh(context.WithoutCancel(ctx), session)
		a.mu.Lock()
		if call.err != nil {
			delete(a.refreshing, session.RefreshToken) // a later request may try again
		} else {
			call.until = time.Now().Add(reuseWindow)
		}
		a.mu.Unlock()
		close(call.done)
	}
	<-call.done
	return call.session, call.err
}

// refresh uses the SDK's refresh grant; its errors carry the HTTP status: 400 (invalid_grant) ends the session,
// 5xx or no answer is an outage.
func (a *Auth) refresh(ctx context.Context, session Session) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tokens, err := a.sk.RefreshAccessToken(ctx, session.RefreshToken)
	if err != nil {
		var skErr *scalekit.Error
		if errors.As(err, &skErr) && skErr.StatusCode == 400 {
			return Session{}, fmt.Errorf("%w: %v", ErrSessionEnded, err)
		}
		if unreachable(err) {
			return Session{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return Session{}, fmt.Errorf("refresh failed (a configuration problem?): %w", err)
	}
	fresh := Session{ID: session.ID, AccessToken: tokens.AccessToken, RefreshToken: tokens.RefreshToken, IDToken: session.IDToken}
	if tokens.IdToken != "" {
		if _, err := a.Verify(ctx, tokens.IdToken); err != nil {
			return Session{}, err
		}
		fresh.IDToken = tokens.IdToken
	}
	return fresh, nil
}

// endregion refresh

// region logout
// LogoutURL is where to send the browser after clearing the cookie: Scalekit ends its own session there (it needs
// its cookie, so a server-side call would not), then returns to a post-logout URL registered in the dashboard.
func (a *Auth) LogoutURL(session *Session) string {
	home := a.cfg.AppURL.String() + "/"
	if session == nil {
		return home
	}
	logoutURL, err := a.sk.GetLogoutUrl(scalekit.LogoutUrlOptions{IdTokenHint: session.IDToken, PostLogoutRedirectUri: home})
	if err != nil {
		return home
	}
	return logoutURL.String()
}

// endregion logout

// region user
type User struct {
	Sub          string         `json:"sub"` // the user id
	Email        string         `json:"email"`
	Name         string         `json:"name"`
	Oid          string         `json:"oid,omitempty"` // the organization of this session
	Roles        []string       `json:"roles"`
	Permissions  []string       `json:"permissions"`
	CustomClaims map[string]any `json:"customClaims"`
}

var standardClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "azp", "sid", "oid", "amr", "at_hash", "c_hash", "auth_time",
	"nonce", "client_id", "scope", "roles", "permissions", "email", "email_verified", "name", "given_name",
	"family_name", "preferred_username", "picture", "locale",
}

// UserOf takes email and name from the ID token (verified at login, sealed in the cookie since), roles, permissions
// and the organization from the access token just verified. User access tokens carry no email.
func UserOf(session Session, access scalekit.Claims) User {
	id := scalekit.Claims{}
	if parts := strings.Split(session.IDToken, "."); len(parts) == 3 {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(payload, &id)
	}
	custom := map[string]any{}
	for _, claims := range []scalekit.Claims{id, access} {
		for name, value := range claims {
			if !slices.Contains(standardClaims, name) {
				custom[name] = value
			}
		}
	}
	user := User{Sub: str(access["sub"]), Email: str(id["email"]), Name: str(id["name"]), Oid: str(access["oid"]),
		Roles: strs(access["roles"]), Permissions: strs(access["permissions"]), CustomClaims: custom}
	if user.Name == "" {
		user.Name = user.Email
	}
	return user
}

// endregion user

func str(value any) string {
	s, _ := value.(string)
	return s
}

func strs(value any) []string {
	list := []string{}
	items, _ := value.([]any)
	for _, item := range items {
		if s, ok := item.(string); ok {
			list = append(list, s)
		}
	}
	return list
}
