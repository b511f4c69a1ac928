// Package testkeys makes synthetic AWS-shaped credentials for tests and
// benchmarks: key IDs that encode a chosen account the way real ones do, and
// random secrets. None of them was ever issued by AWS.
package testkeys

import (
	"encoding/base32"
	"encoding/binary"
	"math/rand/v2"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// KeyID returns a 20-character key ID with the given prefix (AKIA, ASIA …)
// whose characters 4..20 encode account (detect.AccountID's recipe, inverted),
// the rest drawn from rng.
func KeyID(rng *rand.Rand, prefix string, account uint64) string {
	var buf [10]byte
	for i := range buf {
		buf[i] = byte(rng.UintN(256))
	}
	var b8 [8]byte
	copy(b8[2:], buf[:6])
	x := binary.BigEndian.Uint64(b8[:])
	// Current key IDs have the top bit set (they begin AKIAQ … AKIA7).
	x = x&^0xffffffffff80 | 1<<47 | (account<<7)&0x7fffffffff80
	binary.BigEndian.PutUint64(b8[:], x)
	copy(buf[:6], b8[2:])
	id := prefix + b32.EncodeToString(buf[:])
	if id[4] == 'I' || id[4] == 'J' { // old format: redraw
		return KeyID(rng, prefix, account)
	}
	return id
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// Secret returns a random 40-character secret access key with both letter
// cases, as real ones have.
func Secret(rng *rand.Rand) string {
	for {
		b := make([]byte, 40)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if hasBothCases(b) {
			return string(b)
		}
	}
}

func hasBothCases(b []byte) bool {
	var u, l bool
	for _, c := range b {
		u = u || c >= 'A' && c <= 'Z'
		l = l || c >= 'a' && c <= 'z'
	}
	return u && l
}

// SessionToken returns a random session token of n base64 characters.
func SessionToken(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return "IQoJb3JpZ2luX2Vj" + string(b)
}
