package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/keyburn/keyburn/internal/source"
)

func wide(s string) []byte {
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		b.WriteByte(0)
	}
	return b.Bytes()
}

// TestWideStringsInBinaries: a .NET assembly keeps its string literals in
// UTF-16LE (the user-string heap): a key ID and its secret there are found
// and paired, located at the ID's string, with the encoding said. A binary
// without a wide prefix yields nothing more.
func TestWideStringsInBinaries(t *testing.T) {
	var bin bytes.Buffer
	bin.Write([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00#US\x00\x00\x00"))
	bin.Write([]byte{0x29})
	bin.Write(wide("AKIAH7RH4MBQEQEFGOSL"))
	bin.Write([]byte{0x00, 0x51})
	bin.Write(wide("aws_secret_access_key"))
	bin.Write([]byte{0x00, 0x51})
	bin.Write(wide("Y3vZvRrmRFWu5loOQMq2YGt+sW32vMuDsMdnGtJg"))
	bin.Write([]byte{0x00, 0x00, 0x01})
	res, err := ScanReader(context.Background(), Options{Matcher: matcher(t, "")}, bytes.NewReader(bin.Bytes()), "app.dll", &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("%d findings, want the wide key", len(res.Findings))
	}
	f := res.Findings[0]
	if f.KeyID != "AKIAH7RH4MBQEQEFGOSL" || f.Secret.Reveal() != "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" || f.Locations[0].Encoding != "utf-16le" || !f.Locations[0].Binary {
		t.Errorf("found %s paired %v at %+v; want the wide pair, a UTF-16LE string in a binary", f.KeyID, f.Paired(), f.Locations[0])
	}
	plain := bytes.ReplaceAll(bin.Bytes(), []byte{0}, []byte{1})
	if res, _ := ScanReader(context.Background(), Options{Matcher: matcher(t, "")}, bytes.NewReader(append([]byte{0}, plain...)), "x.bin", &recorder{}); len(res.Findings) != 0 {
		t.Errorf("a binary without wide strings: %d findings", len(res.Findings))
	}
}

// TestPNGTextChunks: a key pasted into a PNG's metadata (a tEXt comment and
// a compressed zTXt) is found and paired by a scan with no flags.
func TestPNGTextChunks(t *testing.T) {
	png := source.PNGTestImage(
		"Comment", "AWS_ACCESS_KEY_ID=AKIAH7RH4MBQEQEFGOSL",
		"Settings", "AWS_SECRET_ACCESS_KEY=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")
	res, err := ScanReader(context.Background(), Options{Matcher: matcher(t, "")}, bytes.NewReader(png), "screenshot.png", &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || !res.Findings[0].Paired() || !res.Findings[0].Locations[0].Binary {
		t.Fatalf("findings %+v, want the pair from the text chunks", res.Findings)
	}
}
