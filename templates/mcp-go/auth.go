// Scalekit wiring: configuration, protected-resource metadata, the bearer-token check and per-tool scopes.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	scalekit "github.com/scalekit-inc/scalekit-sdk-go/v2"
)

// region config
type config struct {
	Port                string
	EnvironmentURL      string
	ResourceID          string
	ResourceURL         string // the MCP endpoint's public URL, as registered in Scalekit
	ResourceMetadataURL string
}

func loadConfig() config {
	required := func(name string) string {
		value := strings.TrimSpace(os.Getenv(name))
		if value == "" {
			fmt.Fprintf(os.Stderr, "error: %s is not set (see .env.example)\n", name)
			os.Exit(2)
		}
		return value
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	appURL := strings.TrimRight(os.Getenv("APP_URL"), "/") // the server's public origin
	if appURL == "" {
		appURL = "http://localhost:" + port
	}
	return config{
		Port:                port,
		EnvironmentURL:      strings.TrimRight(required("SCALEKIT_ENVIRONMENT_URL"), "/"),
		ResourceID:          required("SCALEKIT_RESOURCE_ID"),
		ResourceURL:         appURL + "/mcp",
		ResourceMetadataURL: appURL + "/.well-known/oauth-protected-resource/mcp",
	}
}

// endregion config

// region metadata
// RFC 9728 protected-resource metadata: clients read it to find Scalekit's authorization server.
func protectedResourceMetadata(cfg config) *oauthex.ProtectedResourceMetadata {
	return &oauthex.ProtectedResourceMetadata{
		Resource:               cfg.ResourceURL,
		AuthorizationServers:   []string{cfg.EnvironmentURL + "/resources/" + cfg.ResourceID},
		ScopesSupported:        []string{"todo:read", "todo:write"},
		BearerMethodsSupported: []string{"header"},
	}
}

// endregion metadata

// region keys
// keyCache holds Scalekit's signing keys: fetched once, and fetched again when a token names an
// unknown key id (after a key rotation), at most once every 5 seconds.
type keyCache struct {
	url       string
	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time
}

func (c *keyCache) get(ctx context.Context) (*jose.JSONWebKeySet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		return c.fetchLocked(ctx)
	}
	return c.keys, nil
}

// refresh re-reads the keys unless they were read in the last 5 seconds; it reports whether it did.
func (c *keyCache) refresh(ctx context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.fetchedAt) < 5*time.Second {
		return false
	}
	_, err := c.fetchLocked(ctx)
	return err == nil
}

func (c *keyCache) fetchLocked(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	defer resp.Body.Close()
	var keys jose.JSONWebKeySet
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered %d", errKeysUnavailable, c.url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&keys); err != nil || len(keys.Keys) == 0 {
		return nil, fmt.Errorf("%w: %s sent no keys", errKeysUnavailable, c.url)
	}
	c.keys, c.fetchedAt = &keys, time.Now()
	return c.keys, nil
}

var errKeysUnavailable = errors.New("cannot read Scalekit signing keys")

// endregion keys

// region verify
type verifier struct {
	keys       *keyCache
	issuers    []string
	resourceID string

	// Tokens verified before, by the exact token string, each until it expires: checking a signature
	// costs more than a tool call. At most maxVerified (the oldest goes first).
	mu       sync.Mutex
	verified map[string]*auth.TokenInfo
	order    []string // the keys of verified, oldest first
}

const maxVerified = 4096

func newVerifier(cfg config) *verifier {
	return &verifier{
		keys: &keyCache{url: cfg.EnvironmentURL + "/keys"},
		// Scalekit issues MCP tokens with the environment URL as `iss` today and is moving to the resource form.
		issuers:    []string{cfg.EnvironmentURL, cfg.EnvironmentURL + "/resources/" + cfg.ResourceID},
		resourceID: cfg.ResourceID,
		verified:   map[string]*auth.TokenInfo{},
	}
}

func (v *verifier) known(token string) *auth.TokenInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	if info, ok := v.verified[token]; ok && time.Now().Before(info.Expiration) {
		return info
	}
	return nil
}

func (v *verifier) remember(token string, info *auth.TokenInfo) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.verified[token]; ok {
		return
	}
	if len(v.order) >= maxVerified {
		delete(v.verified, v.order[0])
		v.order = v.order[1:]
	}
	v.verified[token] = info
	v.order = append(v.order, token)
}

// verify checks the signature and expiry with the Scalekit SDK, then the issuer, audience and
// not-before time, which the SDK's ValidateToken leaves to the caller. A token it accepted before
// is answered from the cache until it expires.
func (v *verifier) verify(ctx context.Context, token string) (*auth.TokenInfo, error) {
	if info := v.known(token); info != nil {
		return info, nil
	}
	claims, err := scalekit.ValidateToken[scalekit.AccessTokenClaims](ctx, token, v.keys.get)
	if errors.Is(err, jose.ErrJWKSKidNotFound) && v.keys.refresh(ctx) {
		claims, err = scalekit.ValidateToken[scalekit.AccessTokenClaims](ctx, token, v.keys.get)
	}
	if err != nil {
		return nil, err
	}
	nbf, _ := claims.Claims["nbf"].(float64)
	scope, _ := claims.Claims["scope"].(string)
	clientID, _ := claims.Claims["client_id"].(string)
	switch {
	case !slices.Contains(v.issuers, claims.Iss):
		return nil, fmt.Errorf("issuer %q is not accepted", claims.Iss)
	case !slices.Contains(claims.Audience, v.resourceID): // `aud` must contain this server's resource id
		return nil, errors.New("the token was not issued for this server")
	case int64(nbf) > time.Now().Unix():
		return nil, errors.New("the token is not valid yet")
	case claims.Sub == "":
		return nil, errors.New("the token has no subject")
	}
	info := &auth.TokenInfo{
		Scopes:     strings.Fields(scope),
		Expiration: time.Unix(int64(claims.Exp), 0),
		UserID:     claims.Sub, // the MCP handler binds each session to this user
		Extra:      map[string]any{"client_id": clientID},
	}
	v.remember(token, info)
	return info, nil
}

// endregion verify

// region middleware
// region scopes
const readScope = "todo:read" // every request needs it; the 401 challenge asks for it

// toolScopes: what a tool needs besides readScope. A call without it answers 403 insufficient_scope.
var toolScopes = map[string]string{"add_todo": "todo:write"}

// endregion scopes

type verifiedKey struct{}

// protect refuses requests without a valid token for this server, and tool calls without their
// scopes, with the challenges MCP clients act on. Then it hands the verified token to the SDK's
// RequireBearerToken, which passes it to the MCP handler (the token is not checked twice).
func protect(cfg config, v *verifier, next http.Handler) http.Handler {
	handOver := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if info, ok := ctx.Value(verifiedKey{}).(*auth.TokenInfo); ok {
			return info, nil
		}
		return nil, auth.ErrInvalidToken
	}, nil)(next)

	challenge := func(w http.ResponseWriter, status int, code, description, scope string) {
		params := ""
		if code != "" {
			params = fmt.Sprintf("error=%q, error_description=%q, ", code, description)
		} else {
			code, description = "unauthorized", "Send a Bearer access token"
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Bearer %sscope=%q, resource_metadata=%q", params, scope, cfg.ResourceMetadataURL))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " ,") || r.URL.Query().Has("access_token") {
			challenge(w, http.StatusUnauthorized, "", "", readScope) // a token in the URL leaks into logs: never accept one
			return
		}
		info, err := v.verify(r.Context(), token)
		if errors.Is(err, errKeysUnavailable) {
			log.Printf("cannot verify tokens: %v", err)
			w.Header().Set("Retry-After", "5")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
			return
		}
		if err != nil {
			challenge(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid or expired", readScope)
			return
		}
		if !slices.Contains(info.Scopes, readScope) {
			challenge(w, http.StatusForbidden, "insufficient_scope", "This server needs the "+readScope+" scope", readScope)
			return
		}
		if tool, scope := missingToolScope(r, info); scope != "" {
			audit(info, tool, "denied")
			challenge(w, http.StatusForbidden, "insufficient_scope", "This tool needs the "+scope+" scope", readScope+" "+scope)
			return
		}
		handOver.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, info)))
	})
}

// missingToolScope reads the JSON-RPC body (one message or a batch) and returns the first tool
// called without its scope. The body is put back for the MCP handler.
func missingToolScope(r *http.Request, info *auth.TokenInfo) (tool, scope string) {
	if r.Method != http.MethodPost || r.Body == nil {
		return "", ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "", ""
	}
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	var calls []call
	if json.Unmarshal(body, &calls) != nil {
		var one call
		if json.Unmarshal(body, &one) != nil {
			return "", ""
		}
		calls = []call{one}
	}
	for _, c := range calls {
		if need, ok := toolScopes[c.Params.Name]; ok && c.Method == "tools/call" && !slices.Contains(info.Scopes, need) {
			return c.Params.Name, need
		}
	}
	return "", ""
}

// endregion middleware

// region audit
// audit writes one line per tool call: who called which tool, through which client, with which scopes, and the result.
func audit(info *auth.TokenInfo, tool, result string) {
	entry := map[string]any{"audit": "tool_call", "tool": tool, "result": result}
	if info != nil {
		entry["sub"], entry["client_id"], entry["scope"] = info.UserID, info.Extra["client_id"], strings.Join(info.Scopes, " ")
	}
	line, _ := json.Marshal(entry)
	fmt.Println(string(line))
}

// endregion audit
