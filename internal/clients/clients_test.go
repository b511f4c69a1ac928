package clients

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCappedAnswers: an answer over the cap fails with a reason, one under
// it is read whole.
func TestCappedAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", len(r.URL.Path)*100)))
	}))
	defer srv.Close()
	c := &http.Client{Transport: Capped{Base: http.DefaultTransport, Max: 1000}}
	for _, tt := range []struct {
		path string
		ok   bool
	}{{"/a", true}, {"/" + strings.Repeat("b", 20), false}} {
		resp, err := c.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if (err == nil) != tt.ok || tt.ok && len(body) != len(tt.path)*100 || !tt.ok && !strings.Contains(err.Error(), "over keyburn's cap of 1000 bytes") {
			t.Errorf("%s: read %d bytes, %v; want ok %v", tt.path, len(body), err, tt.ok)
		}
	}
}
