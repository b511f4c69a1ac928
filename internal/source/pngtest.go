package source

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// PNGTestImage builds a small PNG whose tEXt chunks hold the given keyword
// and text pairs, for tests of other packages.
func PNGTestImage(pairs ...string) []byte {
	var chunks [][2][]byte
	for i := 0; i+1 < len(pairs); i += 2 {
		chunks = append(chunks, [2][]byte{[]byte("tEXt"), []byte(pairs[i] + "\x00" + pairs[i+1])})
	}
	return pngOf(chunks...)
}

// pngOf builds a PNG of the given chunks (type, body), between the header
// and IEND; the image data is a few bytes no one reads.
func pngOf(chunks ...[2][]byte) []byte {
	var b bytes.Buffer
	b.Write(pngMagic)
	put := func(typ string, body []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(body)))
		b.Write(n[:])
		b.WriteString(typ)
		b.Write(body)
		binary.BigEndian.PutUint32(n[:], crc32.ChecksumIEEE(append([]byte(typ), body...)))
		b.Write(n[:])
	}
	put("IHDR", make([]byte, 13))
	put("IDAT", []byte{0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1})
	for _, c := range chunks {
		put(string(c[0]), c[1])
	}
	put("IEND", nil)
	return b.Bytes()
}
