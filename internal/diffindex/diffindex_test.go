package diffindex

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	out := ":100644 100644 " + EmptyTree + " 9fceb02d0ae598e95dc970b74767f19372d61af8 M\x00a b.txt\x00" +
		":100644 000000 9fceb02d0ae598e95dc970b74767f19372d61af8 0000000000000000000000000000000000000000 D\x00gone\x00" +
		":000000 160000 0000000000000000000000000000000000000000 9fceb02d0ae598e95dc970b74767f19372d61af8 A\x00sub\x00"
	files, err := Parse([]byte(out))
	if err != nil || len(files) != 1 || files[0] != (File{"a b.txt", "9fceb02d0ae598e95dc970b74767f19372d61af8"}) {
		t.Errorf("Parse = %+v, %v", files, err)
	}
	for _, bad := range []string{"garbage\x00x\x00", ":100644 100644 a b M\x00x\x00", ":100644 100644 a " + strings.Repeat("G", 40) + " M\x00x\x00"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse accepted %q", bad)
		}
	}
}

// FuzzParse: whatever git prints, Parse returns or fails, and every file
// it returns has a 40-digit hex hash.
func FuzzParse(f *testing.F) {
	f.Add([]byte(":100644 100644 " + EmptyTree + " 9fceb02d0ae598e95dc970b74767f19372d61af8 M\x00a b.txt\x00"))
	f.Add([]byte(":000000 100644 0000000000000000000000000000000000000000 9fceb02d0ae598e95dc970b74767f19372d61af8 A\x00x\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := Parse(data)
		if err != nil {
			return
		}
		for _, file := range files {
			if len(file.Blob) != 40 || strings.Trim(file.Blob, "0123456789abcdef") != "" {
				t.Fatalf("hash %q from %q", file.Blob, data)
			}
		}
	})
}
