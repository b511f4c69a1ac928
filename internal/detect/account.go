package detect

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
)

// AccountID decodes the 12-digit AWS account ID that current-format access
// key IDs carry, without any network call.
//
// The 16 characters after the 4-character prefix are base32 (RFC 4648
// alphabet). Of the bytes they decode to, the first six read as a big-endian
// integer hold the account ID in bits 7 to 46:
//
//	account = (uint48(bytes[0:6]) & 0x7fffffffff80) >> 7
//
// Key IDs whose fifth character is I or J (AKIAI…, AKIAJ…) are of the older
// format, which does not encode the account; for them ok is false, and only
// sts:GetAccessKeyInfo can name the account. Nor is ok true when the bits hold
// a number of more than 12 digits.
func AccountID(keyID string) (account string, ok bool) {
	if len(keyID) != 20 {
		return "", false
	}
	if c := keyID[4]; c == 'I' || c == 'J' {
		return "", false
	}
	var buf [10]byte
	n, err := base32.StdEncoding.WithPadding(base32.NoPadding).Decode(buf[:], []byte(keyID[4:]))
	if err != nil || n < 6 {
		return "", false
	}
	var b8 [8]byte
	copy(b8[2:], buf[:6])
	x := binary.BigEndian.Uint64(b8[:])
	acct := (x & 0x7fffffffff80) >> 7
	if acct > 999_999_999_999 { // 40 bits hold more than 12 digits; AWS uses 12
		return "", false
	}
	return fmt.Sprintf("%012d", acct), true
}
