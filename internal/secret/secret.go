// Package secret holds a credential's secret part in a type that never prints
// itself: every formatting path (fmt verbs, log/slog, JSON, text marshalling,
// errors that wrap it) yields the redacted form. The full value is reachable
// only through Reveal, which verification and --show-secret call on purpose.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Secret is a secret value. The zero Secret is empty.
type Secret struct {
	v string
}

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the full secret. Call it only to use the secret (signing a
// request) or when the user asked to see it.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether s is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Len returns the length of the secret in bytes.
func (s Secret) Len() int { return len(s.v) }

// SHA256 returns the hex SHA-256 of the secret: a stable identity for it that
// can be printed and stored (a 40-character AWS secret has far too much
// entropy for the hash to be reversed).
func (s Secret) SHA256() string {
	if s.v == "" {
		return ""
	}
	h := sha256.Sum256([]byte(s.v))
	return hex.EncodeToString(h[:])
}

// Redacted returns the first and last four characters around an ellipsis for
// secrets of 16 characters or more, and asterisks for shorter ones.
func (s Secret) Redacted() string {
	return Redact(s.v)
}

// Redact redacts a plain string the way Secret.Redacted does.
func Redact(v string) string {
	switch {
	case v == "":
		return ""
	case len(v) < 16:
		return "****"
	default:
		return v[:4] + "…" + v[len(v)-4:]
	}
}

// String implements fmt.Stringer with the redacted form.
func (s Secret) String() string { return s.Redacted() }

// GoString implements fmt.GoStringer, so that %#v is redacted too.
func (s Secret) GoString() string { return fmt.Sprintf("secret.Secret(%q)", s.Redacted()) }

// Format implements fmt.Formatter: every verb prints the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, s.Redacted())
	case 'q':
		fmt.Fprintf(f, "%q", s.Redacted())
	default:
		fmt.Fprint(f, s.Redacted())
	}
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.Redacted()) }

// MarshalJSON implements json.Marshaler with the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", s.Redacted())), nil
}

// MarshalText implements encoding.TextMarshaler with the redacted form.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.Redacted()), nil }
