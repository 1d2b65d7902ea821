package password

import "testing"

func TestHashAndCheck(t *testing.T) {
	t.Parallel()
	encoded, err := Hash("correct horse")
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	if !Check("correct horse", encoded) {
		t.Error("Check rejected the right password")
	}
	if Check("wrong horse", encoded) {
		t.Error("Check accepted a wrong password")
	}
	if Check("correct horse", "md5$1$x$y") {
		t.Error("Check accepted a hash of another algorithm")
	}
}

// The encoding Django's PBKDF2PasswordHasher gives "estela12345" with salt "abc" and 1000
// iterations, computed independently with Python's hashlib.pbkdf2_hmac, so that accounts moved
// from estela keep working.
func TestCheckDjangoHash(t *testing.T) {
	t.Parallel()
	const django = "pbkdf2_sha256$1000$abc$G5QySgNOS0e7S0UulsFqcG0ZqmqbLmVQ9UgDjpD4Xr4="
	if !Check("estela12345", django) {
		t.Errorf("Check rejected the Django hash %s", django)
	}
}
