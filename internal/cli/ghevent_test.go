package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzEventRange: whatever the event file holds, a range comes out only
// as two commit SHAs, never text from the payload.
func FuzzEventRange(f *testing.F) {
	f.Add("push", []byte(`{"before":"0000000000000000000000000000000000000000","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"}`))
	f.Add("pull_request", []byte(`{"pull_request":{"base":{"sha":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"},"head":{"sha":"--upload-pack=evil"}}}`))
	f.Add("push", []byte(`{"before":1}`))
	path := filepath.Join(f.TempDir(), "event.json")
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := eventRange(name, path)
		if err != nil {
			return
		}
		from, to, ok := strings.Cut(r, "..")
		if !ok || !shaRE.MatchString(from) || !shaRE.MatchString(to) {
			t.Fatalf("eventRange = %q: not two SHAs", r)
		}
	})
}
