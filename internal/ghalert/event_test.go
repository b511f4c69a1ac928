package ghalert

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func fixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/created.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	good := string(fixture(t))
	tests := []struct {
		name   string
		body   string
		ok     bool
		wanted bool
		why    string
	}{
		{"GitHub's created event", good, true, true, ""},
		{"reopened", strings.Replace(good, `"action": "created"`, `"action": "reopened"`, 1), true, true, ""},
		{"publicly leaked", strings.Replace(good, `"action": "created"`, `"action": "publicly_leaked"`, 1), true, true, ""},
		{"the secret half", strings.Replace(good, `"aws_access_key_id"`, `"aws_secret_access_key"`, 1), true, true, ""},
		{"resolved: nothing to do", strings.Replace(good, `"action": "created"`, `"action": "resolved"`, 1), true, false, "action resolved"},
		{"not AWS", strings.Replace(good, `"aws_access_key_id"`, `"github_personal_access_token"`, 1), true, false, "not an AWS key"},
		{"escaping name", strings.Replace(good, `"full_name": "acme/app"`, `"full_name": "../etc"`, 1), false, false, ""},
		{"no number", strings.Replace(good, `"number": 42`, `"number": 0`, 1), false, false, ""},
		{"negative number", strings.Replace(good, `"number": 42`, `"number": -3`, 1), false, false, ""},
		{"hostile secret type", strings.Replace(good, `"aws_access_key_id"`, `"aws_x\n"`, 1), false, false, ""},
		{"hostile action", strings.Replace(good, `"action": "created"`, `"action": "created; rm -rf"`, 1), false, false, ""},
		{"not JSON", `{"action":`, false, false, ""},
	}
	for _, tt := range tests {
		e, name, err := Parse([]byte(tt.body))
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrNotAlert) {
			t.Errorf("%s: Parse = %+v, %v, %v; want ok %v", tt.name, e, name, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		wanted, why := e.Wanted()
		if name.String() != "acme/app" || e.Alert.Number != 42 || wanted != tt.wanted || !strings.Contains(why, tt.why) {
			t.Errorf("%s: %v #%d wanted %v (%q); want acme/app #42, %v (%q)", tt.name, name, e.Alert.Number, wanted, why, tt.wanted, tt.why)
		}
	}
	e1, n1, _ := Parse([]byte(good))
	e2, n2, _ := Parse([]byte(strings.Replace(good, `"full_name": "acme/app"`, `"full_name": "ACME/app"`, 1)))
	e3, n3, _ := Parse([]byte(strings.Replace(good, `"action": "created"`, `"action": "reopened"`, 1)))
	if e1.DedupeKey(n1) != e2.DedupeKey(n2) || e1.DedupeKey(n1) == e3.DedupeKey(n3) {
		t.Errorf("dedupe keys: %q, %q (same alert), %q (reopened: another)", e1.DedupeKey(n1), e2.DedupeKey(n2), e3.DedupeKey(n3))
	}
}

func FuzzParse(f *testing.F) {
	f.Add(fixture(f))
	f.Add([]byte(`{"action":"created","alert":{"number":1,"secret_type":"aws_access_key_id"},"repository":{"full_name":"a/b"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, name, err := Parse(data)
		if err != nil {
			return
		}
		if name.Owner == ".." || name.Repo == ".." || e.Alert.Number <= 0 || !token(e.Action) || !token(e.Alert.SecretType) {
			t.Errorf("accepted %+v for %q", e, name)
		}
		// What the queue stores is read back the same.
		if _, err := e.Check(); err != nil {
			t.Errorf("Check of an accepted event: %v", err)
		}
	})
}
