package serve

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// NewToken returns a fresh bearer token (256 random bits, hex) and the
// hex SHA-256 the config holds instead of it: a config that leaks gives
// nobody a token.
func NewToken() (token, sha string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	token = "brig_" + hex.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:])
}

func parseTokenHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("token_sha256 %.80q: want the 64 hex digits brig token prints (never the token itself)", s)
	}
	copy(h[:], b)
	return h, nil
}

func hashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }
