package source

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const archivedKey = "aws_access_key_id = AKIAROSDW5AABZW3VLYZ\naws_secret_access_key = 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\n"

func zipOf(t testing.TB, members map[string][]byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(members[n])
	}
	zw.Close()
	return b.Bytes()
}

func tarGzOf(t testing.TB, members map[string][]byte) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for n, body := range members {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func gzipOf(name string, body []byte) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	gz.Name = name
	gz.Write(body)
	gz.Close()
	return b.Bytes()
}

type skips struct{ reasons []string }

func (s *skips) Skipped(path, reason string) { s.reasons = append(s.reasons, path+": "+reason) }
func (s *skips) Failed(err error)            { s.reasons = append(s.reasons, "FAILED "+err.Error()) }

func expandAll(t *testing.T, data []byte, name string, depth int) ([]string, *skips) {
	t.Helper()
	rep := &skips{}
	var got []string
	ExpandArchive(data, name, depth, rep, func(p string, text []byte) {
		if strings.Contains(string(text), "AKIAROSDW5AABZW3VLYZ") {
			got = append(got, p)
		}
	})
	sort.Strings(got)
	return got, rep
}

func TestExpandArchive(t *testing.T) {
	jar := zipOf(t, map[string][]byte{"config/app.properties": []byte(archivedKey), "Main.class": {0xca, 0xfe, 0, 0}})
	war := zipOf(t, map[string][]byte{"WEB-INF/lib/app.jar": jar, "index.html": []byte("<p>hi</p>")})
	tests := []struct {
		name  string
		data  []byte
		depth int
		want  string
	}{
		{"app.jar", jar, 2, "app.jar!config/app.properties"},
		{"app.war", war, 2, "app.war!WEB-INF/lib/app.jar!config/app.properties"},
		{"app.war", war, 1, ""}, // the jar inside is one level too deep
		{"site.tar.gz", tarGzOf(t, map[string][]byte{"etc/aws.ini": []byte(archivedKey)}), 2, "site.tar.gz!etc/aws.ini"},
		{"creds.gz", gzipOf("credentials", []byte(archivedKey)), 2, "creds.gz!credentials"},
		{"deep.zip", zipOf(t, map[string][]byte{"a.tar.gz": tarGzOf(t, map[string][]byte{"k.env": []byte(archivedKey)})}), 2, "deep.zip!a.tar.gz!k.env"},
	}
	for _, tt := range tests {
		got, rep := expandAll(t, tt.data, tt.name, tt.depth)
		if strings.Join(got, ",") != tt.want || len(rep.reasons) != 0 {
			t.Errorf("%s (depth %d): found in %v, reports %v; want %q", tt.name, tt.depth, got, rep.reasons, tt.want)
		}
	}
}

// TestZipBomb: members that decompress beyond the budget are refused with
// a clear message; what came before is kept.
func TestZipBomb(t *testing.T) {
	defer func(b int64) { archiveBudget = b }(archiveBudget)
	archiveBudget = 1 << 20 // below minBudget: the smallest budget wins
	bomb := zipOf(t, map[string][]byte{"a.env": []byte(archivedKey), "b.bin": bytes.Repeat([]byte{'0'}, 4<<20)})
	got, rep := expandAll(t, bomb, "bomb.zip", 2)
	if strings.Join(got, ",") != "bomb.zip!a.env" || len(rep.reasons) != 1 || !strings.Contains(rep.reasons[0], "(a zip bomb?)") {
		t.Errorf("a zip bomb: found in %v, reports %v", got, rep.reasons)
	}
	gzBomb := gzipOf("x", bytes.Repeat([]byte{'0'}, 4<<20))
	if _, rep := expandAll(t, gzBomb, "x.gz", 2); len(rep.reasons) != 1 || !strings.Contains(rep.reasons[0], "budget") {
		t.Errorf("a gzip bomb: reports %v", rep.reasons)
	}
}

func TestBrokenArchive(t *testing.T) {
	jar := zipOf(t, map[string][]byte{"a.env": []byte(archivedKey)})
	got, rep := expandAll(t, jar[:len(jar)/2], "cut.jar", 2)
	if len(got) != 0 || len(rep.reasons) != 1 || !strings.Contains(rep.reasons[0], "not readable") {
		t.Errorf("a truncated jar: found %v, reports %v; want one skip saying why", got, rep.reasons)
	}
	if ExpandArchive([]byte("plain text"), "x.txt", 2, rep, func(string, []byte) {}) {
		t.Errorf("plain text taken for an archive")
	}
}

func FuzzExpandArchive(f *testing.F) {
	f.Add(zipOf(f, map[string][]byte{"a.env": []byte(archivedKey)}))
	f.Add(tarGzOf(f, map[string][]byte{"a.env": []byte(archivedKey)}))
	f.Add(gzipOf("a", []byte(archivedKey)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var total int64
		ExpandArchive(data, "f", 3, &skips{}, func(_ string, text []byte) { total += int64(len(text)) })
		if total > archiveBudget*2 { // UTF-16 decoding can double, never more
			t.Errorf("yielded %d bytes, over the budget", total)
		}
	})
}

// TestSmallBombStopsEarly: a small archive gets a budget of its own size
// times maxRatio (at least minBudget), whatever the global budget.
func TestSmallBombStopsEarly(t *testing.T) {
	bomb := gzipOf("zeros", bytes.Repeat([]byte{'0'}, minBudget+1<<20)) // a few KiB, 17 MiB inflated
	_, rep := expandAll(t, bomb, "z.gz", 2)
	if len(rep.reasons) != 1 || !strings.Contains(rep.reasons[0], "budget of 16 MiB") {
		t.Errorf("a small gzip bomb: %v", rep.reasons)
	}
}

// TestArchiveMembersNeverReachTheDisk: an archive's members are read from
// the archive alone. A tar symbolic or hard link to a file outside (one
// holding a key) reads nothing; a zip entry marked as a link holds only its
// target's name; a member named "../../x" or "/etc/x" is a label inside the
// archive, scanned from the archive's own bytes.
func TestArchiveMembersNeverReachTheDisk(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(outside, []byte(archivedKey), 0o600); err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "link", Linkname: outside, Typeflag: tar.TypeSymlink})
	tw.WriteHeader(&tar.Header{Name: "hard", Linkname: outside, Typeflag: tar.TypeLink})
	tw.WriteHeader(&tar.Header{Name: "../../escaped.env", Mode: 0o644, Size: int64(len(archivedKey)), Typeflag: tar.TypeReg})
	tw.Write([]byte(archivedKey))
	tw.Close()
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	h := &zip.FileHeader{Name: "zlink"}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte(outside))
	w, _ = zw.Create("/etc/absolute.env")
	w.Write([]byte(archivedKey))
	zw.Close()
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"links.tar", tb.Bytes(), "links.tar!../../escaped.env"},
		{"links.zip", zb.Bytes(), "links.zip!/etc/absolute.env"},
	} {
		got, rep := expandAll(t, tt.data, tt.name, 1)
		if strings.Join(got, ",") != tt.want {
			t.Errorf("%s: keys found in %v (reports %v); want only the member that holds one itself, %s", tt.name, got, rep.reasons, tt.want)
		}
	}
}
