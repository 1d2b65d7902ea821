// Package password hashes and checks user passwords with PBKDF2-SHA256, in Django's
// "pbkdf2_sha256$<iterations>$<salt>$<base64 hash>" format so that accounts can move between
// estela and this platform.
package password

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Iterations is the PBKDF2 work factor of new hashes; Django 4.2 uses the same.
const Iterations = 600000

const algorithm = "pbkdf2_sha256"

// Hash returns the encoded hash of a password with a random salt.
func Hash(plain string) (string, error) {
	salt := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	return encode(plain, hex.EncodeToString(salt), Iterations)
}

func encode(plain, salt string, iterations int) (string, error) {
	key, err := pbkdf2.Key(sha256.New, plain, []byte(salt), iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return fmt.Sprintf("%s$%d$%s$%s", algorithm, iterations, salt, base64.StdEncoding.EncodeToString(key)), nil
}

// Check reports whether plain matches an encoded hash. Malformed hashes never match.
func Check(plain, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[0] != algorithm {
		return false
	}
	iterations, err := strconv.Atoi(parts[1])
	if err != nil || iterations < 1 {
		return false
	}
	again, err := encode(plain, parts[2], iterations)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(again), []byte(encoded)) == 1
}

// Generate returns a random password of 24 URL-safe characters.
func Generate() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
