// Sealed cookies: the session (and the short-lived login transaction) are JSON, compressed, then encrypted and
// authenticated with AES-256-GCM under SESSION_SECRET, so the browser can neither read nor change them.
package main

import (
	"bytes"
	"compress/flate"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

const (
	sessionCookie   = "sk_session"
	loginCookie     = "sk_login"
	sessionMaxAge   = 7 * 24 * time.Hour // Scalekit's session policy still ends it earlier
	loginMaxAge     = 10 * time.Minute
	maxCookieLength = 3800 // browsers drop cookies over 4096 bytes, name and attributes included
	openedCacheSize = 10000
)

type sealer struct {
	aead   cipher.AEAD
	opened sync.Map // recent cookie values -> what they hold: decrypt and decode each once
	count  atomic.Int64
}

func newSealer(secret string) (*sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("SESSION_SECRET must be at least 32 characters (openssl rand -hex 32)")
	}
	key := sha256.Sum256([]byte(secret))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(value any) (string, error) {
	plain, err := json.Marshal(value)
	if err != nil {
		return "", err
	}
	var compressed bytes.Buffer
	writer, _ := flate.NewWriter(&compressed, flate.BestCompression)
	writer.Write(plain)
	writer.Close()
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	sealed := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, compressed.Bytes(), nil))
	if len(sealed) > maxCookieLength {
		// Three JWTs fit with room to spare; many roles or custom claims may not: then keep sessions server-side.
		return "", errors.New("sealed cookie too large")
	}
	return sealed, nil
}

// unseal returns what a sealed cookie holds, or false when it is missing, forged or tampered with.
func unseal[T any](s *sealer, r *http.Request, name string) (T, bool) {
	var value T
	cookie, err := r.Cookie(name)
	if err != nil {
		return value, false
	}
	if known, ok := s.opened.Load(cookie.Value); ok {
		value, ok = known.(T)
		return value, ok
	}
	raw, err := base64.RawURLEncoding.DecodeString(cookie.Value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return value, false
	}
	compressed, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], nil)
	if err != nil {
		return value, false
	}
	plain, err := io.ReadAll(flate.NewReader(bytes.NewReader(compressed)))
	if err != nil || json.Unmarshal(plain, &value) != nil {
		return value, false
	}
	if s.count.Add(1) > openedCacheSize { // full: start again rather than track the oldest
		s.opened.Clear()
		s.count.Store(1)
	}
	s.opened.Store(cookie.Value, value)
	return value, true
}

// region cookie-options
// setCookie writes an HttpOnly, SameSite=Lax cookie, Secure everywhere except plain-http localhost
// (browsers drop Secure cookies there). An empty value with maxAge 0 deletes it.
func setCookie(w http.ResponseWriter, appURL *url.URL, name, value string, maxAge time.Duration) {
	plainLocalhost := appURL.Scheme == "http" && isLoopback(appURL.Hostname())
	cookie := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: !plainLocalhost, MaxAge: int(maxAge.Seconds())}
	if maxAge == 0 {
		cookie.MaxAge = -1 // Max-Age=0: delete now
	}
	http.SetCookie(w, cookie)
}

// endregion cookie-options

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
