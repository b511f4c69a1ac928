package report

import "testing"

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"config/app.env", "config/app.env"},
		{"x\x1b[2Jy.env", `x\x1b[2Jy.env`},
		{"a\nkeyburn: 0 findings", `a\x0akeyburn: 0 findings`},
		{"bell\a\x7f", `bell\x07\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash` + "\x1b", `back\\slash\x1b`},
		{"café ✓", "café ✓"},
	}
	for _, tt := range tests {
		if got := Printable(tt.in); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzPrintable: whatever goes in, nothing a terminal obeys comes out.
func FuzzPrintable(f *testing.F) {
	f.Add("x\x1b[2J\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if needsEscape(Printable(s)) {
			t.Fatalf("Printable(%q) = %q still holds a control character", s, Printable(s))
		}
	})
}
