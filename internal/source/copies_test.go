package source

import (
	"testing"
)

func TestCopyRename(t *testing.T) {
	c := Copy{Path: "lib/b.jar", Of: "a.jar"}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"a.jar", "lib/b.jar", true},
		{"a.jar!conf/app.properties", "lib/b.jar!conf/app.properties", true},
		{"a.jar!inner.zip!x.env", "lib/b.jar!inner.zip!x.env", true},
		{"a.jar.bak!x", "", false}, // another archive whose name starts alike
		{"b/a.jar!x", "", false},
		{"", "", false},
	} {
		got, ok := c.Rename(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Rename(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestArchiveCopiesClaim(t *testing.T) {
	var a ArchiveCopies
	if of := a.claim([]byte("one"), "x/1.zip"); of != "" {
		t.Fatalf("first claim: a copy of %q", of)
	}
	if of := a.claim([]byte("two"), "x/2.zip"); of != "" {
		t.Fatalf("other bytes: a copy of %q", of)
	}
	if of := a.claim([]byte("one"), "y/1.zip"); of != "x/1.zip" {
		t.Fatalf("same bytes: a copy of %q, want x/1.zip", of)
	}
	rep := &skips{}
	a.noting("x/1.zip", rep).Skipped("x/1.zip!m", "why")
	if len(rep.reasons) != 1 || rep.reasons[0] != "x/1.zip!m: why" {
		t.Errorf("the note did not reach the reporter: %q", rep.reasons)
	}
	if got := a.Notes("x/1.zip"); len(got) != 1 || got[0] != (Note{"x/1.zip!m", "why"}) {
		t.Errorf("Notes = %v", got)
	}
	if got := a.Copies(); len(got) != 1 || got[0] != (Copy{Path: "y/1.zip", Of: "x/1.zip"}) {
		t.Errorf("Copies = %v", got)
	}
}
