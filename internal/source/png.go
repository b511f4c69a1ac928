package source

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
)

// An image holds no text to scan, but a PNG may carry text chunks (tEXt,
// zTXt, iTXt: a comment, a tool's settings, an export of whatever was on
// the screen). PNGText reads them, so that a key pasted into an image's
// metadata is found; the pixels are never read.

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// Limits on what PNGText reads: chunks walked, text kept, and what one
// compressed chunk may inflate to (a zip bomb in a zTXt is refused).
const (
	maxPNGChunks   = 10000
	maxPNGText     = 1 << 20
	maxPNGInflated = 1 << 20
)

// IsPNG reports whether data starts as a PNG does.
func IsPNG(data []byte) bool { return bytes.HasPrefix(data, pngMagic) }

// PNGText returns a PNG's text chunks, one "keyword: text" per line; nil
// when it has none or is not a PNG.
func PNGText(data []byte) []byte {
	if !IsPNG(data) {
		return nil
	}
	var out bytes.Buffer
	for i, off := 0, len(pngMagic); i < maxPNGChunks && off+12 <= len(data) && out.Len() < maxPNGText; i++ {
		n := int(binary.BigEndian.Uint32(data[off:]))
		typ := string(data[off+4 : off+8])
		if n < 0 || off+12+n > len(data) {
			break
		}
		body := data[off+8 : off+8+n]
		off += 12 + n
		switch typ {
		case "tEXt":
			if k, v, ok := bytes.Cut(body, []byte{0}); ok {
				writeText(&out, k, v)
			}
		case "zTXt":
			// keyword, NUL, method (0: zlib), compressed text
			if k, rest, ok := bytes.Cut(body, []byte{0}); ok && len(rest) > 1 && rest[0] == 0 {
				if v := inflate(rest[1:]); v != nil {
					writeText(&out, k, v)
				}
			}
		case "iTXt":
			// keyword, NUL, compressed flag, method, language, NUL,
			// translated keyword, NUL, text
			k, rest, ok := bytes.Cut(body, []byte{0})
			if !ok || len(rest) < 2 {
				continue
			}
			compressed := rest[0] == 1
			_, rest, ok = bytes.Cut(rest[2:], []byte{0}) // language
			if !ok {
				continue
			}
			_, v, ok := bytes.Cut(rest, []byte{0}) // translated keyword
			if !ok {
				continue
			}
			if compressed {
				v = inflate(v)
			}
			if v != nil {
				writeText(&out, k, v)
			}
		case "IEND":
			return out.Bytes()
		}
	}
	if out.Len() == 0 {
		return nil
	}
	return out.Bytes()
}

func writeText(out *bytes.Buffer, k, v []byte) {
	out.Write(k)
	out.WriteString(": ")
	out.Write(v)
	out.WriteByte('\n')
}

// inflate decompresses a zlib stream, nil when it is broken or inflates
// past maxPNGInflated.
func inflate(z []byte) []byte {
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil
	}
	defer r.Close()
	v, err := io.ReadAll(io.LimitReader(r, maxPNGInflated+1))
	if err != nil || len(v) > maxPNGInflated {
		return nil
	}
	return v
}
