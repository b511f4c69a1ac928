package ghrepo

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"acme/hello", true},
		{"octo-org/.github", true},
		{"a/b_c.d-e", true},
		{"../escaped", false},
		{"acme/..", false},
		{"acme/.", false},
		{"acme/hello/../../x", false},
		{"acme", false},
		{"-acme/x", false},
		{"ac--me/x", false},
		{"acme/x.git", false},
		{"acme/with space", false},
		{"acme/x%2f..", false},
		{"acme/" + string(make([]byte, 101)), false},
		{"", false},
	}
	for _, tt := range tests {
		n, err := Parse(tt.in)
		if (err == nil) != tt.ok || (tt.ok && n.String() != tt.in) {
			t.Errorf("Parse(%q) = %v, %v; want ok %v", tt.in, n, err, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"acme/hello", "../x", "a/..", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		if n.String() != s || n.Repo == ".." || n.Repo == "." {
			t.Errorf("Parse(%q) accepted %+v", s, n)
		}
		for _, c := range n.Owner + n.Repo {
			if c == '/' || c == '\\' || c == 0 {
				t.Errorf("Parse(%q) accepted a separator", s)
			}
		}
	})
}

func TestHost(t *testing.T) {
	tests := []struct {
		base, api string
		want      string // clone URL of acme/hello; "" when refused
	}{
		{"", "", "https://github.com/acme/hello.git"},
		{"https://ghe.example.com/", "", "https://ghe.example.com/acme/hello.git"},
		{"http://127.0.0.1:8080", "", "http://127.0.0.1:8080/acme/hello.git"},
		{"http://evil.example.com", "", ""},
		{"file:///srv/git", "", ""},
		{"https://user:pw@github.com", "", ""},
	}
	for _, tt := range tests {
		h, err := NewHost(tt.base)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NewHost(%q) accepted", tt.base)
			}
			continue
		}
		if err != nil || h.CloneURL(Name{"acme", "hello"}) != tt.want {
			t.Errorf("NewHost(%q): %v, %v; want %s", tt.base, h.Git, err, tt.want)
		}
	}
	h, err := HostForAPI("https://ghe.example.com/api/v3/")
	if err != nil || h.Git.String() != "https://ghe.example.com" {
		t.Errorf("HostForAPI = %v, %v", h.Git, err)
	}
}

func TestOwners(t *testing.T) {
	if !(Owners{}).Allows("anyone") || !(Owners{"Acme"}).Allows("acme") || (Owners{"acme"}).Allows("evil") {
		t.Errorf("Owners.Allows is wrong")
	}
}
