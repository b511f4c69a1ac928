package secret

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A synthetic secret: random, never issued by AWS.
const full = "3J+Kp9v0sYbqLw7cTzR2mXh6dGfNa1oEi8uVyB4Q"

func TestSecretNeverPrints(t *testing.T) {
	s := New(full)
	type wrapper struct {
		Name   string
		Secret Secret
		Ptr    *Secret
	}
	w := wrapper{Name: "x", Secret: s, Ptr: &s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-50v"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, w), fmt.Sprintf(verb, &s), fmt.Sprintf(verb, []Secret{s}))
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, w), s.String(), s.GoString())
	outs = append(outs, fmt.Errorf("verify %v: %w", s, errors.New("boom")).Error())

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("msg", "secret", s, "w", w, "ptr", &s)
		l.Info("group", slog.Group("g", "secret", s), slog.Any("any", s))
	}
	outs = append(outs, buf.String())

	for _, v := range []any{s, w, &s, map[string]Secret{"k": s}} {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		outs = append(outs, string(j))
		x, err := xml.Marshal(v)
		if err == nil {
			outs = append(outs, string(x))
		}
	}
	for i, o := range outs {
		if strings.Contains(o, full) || strings.Contains(o, full[4:36]) {
			t.Errorf("output %d carries the secret (shown redacted here): %s", i, strings.ReplaceAll(o, full, "<SECRET>"))
		}
		if !strings.Contains(o, "3J+K") && !strings.Contains(o, "3J\\u002bK") && !strings.Contains(o, "3J+K") {
			t.Errorf("output %d lacks the redacted form: %s", i, o)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"short", "****"},
		{full, "3J+K…yB4Q"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(len %d) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
	if got := New(full).Reveal(); got != full {
		t.Errorf("Reveal() did not return the value")
	}
	if New("").SHA256() != "" || len(New(full).SHA256()) != 64 {
		t.Errorf("SHA256 lengths wrong")
	}
}
