package ghapp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func testKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// TestInstallationToken checks the JWT GitHub receives and the token cache.
func TestInstallationToken(t *testing.T) {
	key, pemKey := testKey(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/orgs/acme/installation") {
			fmt.Fprint(w, `{"id":42}`)
			return
		}
		if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/app/installations/42/access_tokens") {
			http.NotFound(w, r)
			return
		}
		raw := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok, err := jwt.ParseWithClaims(raw, &jwt.RegisteredClaims{}, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}))
		if err != nil || tok.Claims.(*jwt.RegisteredClaims).Issuer != "7" {
			t.Errorf("app JWT: %v", err)
			w.WriteHeader(401)
			return
		}
		calls.Add(1)
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"token":"ghs_%d","expires_at":%q}`, calls.Load(), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer srv.Close()
	app, err := New(7, pemKey, srv.URL+"/api/v3/")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		tok, err := app.Token(context.Background(), 42)
		if err != nil || tok != "ghs_1" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("%d token requests for one installation, want 1 (cached)", calls.Load())
	}
	// Near expiry, a new token is fetched.
	app.now = func() time.Time { return time.Now().Add(58 * time.Minute) }
	if tok, _ := app.Token(context.Background(), 42); tok != "ghs_2" {
		t.Errorf("after expiry: %q, want a fresh token", tok)
	}
	app.now = time.Now
	if tok, err := app.OrgToken(context.Background(), "acme", false); err != nil || tok != "ghs_2" {
		t.Errorf("OrgToken = %q, %v, want the installation's cached token", tok, err)
	}
	if _, err := New(7, []byte("not a key"), ""); err == nil {
		t.Errorf("a bad key was accepted")
	}
}
