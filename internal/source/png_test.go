package source

import (
	"bytes"
	"compress/zlib"
	"strings"
	"testing"
)

func zlibOf(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestPNGText(t *testing.T) {
	png := pngOf(
		[2][]byte{[]byte("tEXt"), []byte("Comment\x00AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL")},
		[2][]byte{[]byte("zTXt"), append([]byte("Settings\x00\x00"), zlibOf("aws_secret_access_key=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")...)},
		[2][]byte{[]byte("iTXt"), append([]byte("Note\x00\x01\x00en\x00Note\x00"), zlibOf("compressed international text")...)},
		[2][]byte{[]byte("iTXt"), []byte("Plain\x00\x00\x00\x00\x00uncompressed international text")},
	)
	got := string(PNGText(png))
	for _, want := range []string{"Comment: AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL\n", "Settings: aws_secret_access_key=Y3vZ",
		"Note: compressed international text\n", "Plain: uncompressed international text\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("PNGText lacks %.40q… (%d bytes of text read)", want, len(got))
		}
	}
	if PNGText(pngOf()) != nil || PNGText([]byte("not a png")) != nil {
		t.Error("text from a PNG without text chunks, or from no PNG")
	}
	// A zTXt that inflates past the limit is refused.
	bomb := pngOf([2][]byte{[]byte("zTXt"), append([]byte("Bomb\x00\x00"), zlibOf(strings.Repeat("a", maxPNGInflated+10))...)})
	if PNGText(bomb) != nil {
		t.Error("a zTXt bomb was inflated")
	}
}

// FuzzPNGText: no input makes the chunk reader panic or return more than
// its limit.
func FuzzPNGText(f *testing.F) {
	f.Add(pngOf([2][]byte{[]byte("tEXt"), []byte("k\x00v")}))
	f.Add(pngOf([2][]byte{[]byte("iTXt"), []byte("k\x00\x01\x00")}))
	f.Add(append(append([]byte{}, pngMagic...), 0xff, 0xff, 0xff, 0xff, 't', 'E', 'X', 't'))
	f.Fuzz(func(t *testing.T, data []byte) {
		if out := PNGText(data); len(out) > maxPNGText+maxPNGInflated+64 {
			t.Fatalf("PNGText returned %d bytes", len(out))
		}
	})
}

// TestScannablePNG: history blobs and archive members go through
// Scannable: a PNG with text gives its text (as a binary's strings), one
// without is skipped as an image.
func TestScannablePNG(t *testing.T) {
	text, binary, why := Scannable(pngOf([2][]byte{[]byte("tEXt"), []byte("k\x00AKIAH7RH4MBQEQEFGOSL")}), false)
	if !binary || why != "" || !strings.Contains(string(text), "AKIAH7RH4MBQEQEFGOSL") {
		t.Errorf("a PNG with text: %q, binary %v, why %q", text, binary, why)
	}
	if _, _, why := Scannable(pngOf(), false); why != "compressed (png)" {
		t.Errorf("a PNG without text: why %q, want it skipped as an image", why)
	}
}
