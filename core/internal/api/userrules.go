package api

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of Django's user model, which estela uses.
const (
	maxUsernameRunes      = 150
	maxEmailLength        = 254
	minPasswordRunes      = 8
	maxPasswordSimilarity = 0.7
)

// usernamePattern is Django's UnicodeUsernameValidator: letters, digits and @ . + - _.
var usernamePattern = regexp.MustCompile(`^[\p{L}\p{N}_.@+-]+$`)

// usernameProblems returns the messages for an invalid username, or none.
func usernameProblems(name string) []string {
	if n := utf8.RuneCountInString(name); n > maxUsernameRunes {
		return []string{fmt.Sprintf("Ensure this value has at most %d characters (it has %d).", maxUsernameRunes, n)}
	}
	if !usernamePattern.MatchString(name) {
		return []string{"Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."}
	}
	// Django accepts these, but a path segment . or .. is cleaned away, so the user's profile
	// route could never be reached.
	if name == "." || name == ".." {
		return []string{"Enter a valid username. A username cannot be . or .. alone."}
	}
	return nil
}

// emailProblems returns the messages for an invalid e-mail address, or none. The address must
// be bare, without a display name or angle brackets.
func emailProblems(email string) []string {
	invalid := []string{"Enter a valid email address."}
	if len(email) > maxEmailLength || strings.ContainsAny(email, " \t\r\n") {
		return invalid
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return invalid
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" || domain == "" {
		return invalid
	}
	return nil
}

// passwordProblems applies Django's default password validators, as estela configures them,
// and returns their messages: a minimum length, not entirely numeric, not too similar to the
// username or e-mail address, and not one of a few very common passwords.
func passwordProblems(password, username, email string) []string {
	var out []string
	if utf8.RuneCountInString(password) < minPasswordRunes {
		out = append(out, fmt.Sprintf("This password is too short. It must contain at least %d characters.", minPasswordRunes))
	}
	if tooSimilar(password, username) {
		out = append(out, "The password is too similar to the username.")
	} else if tooSimilar(password, email) {
		out = append(out, "The password is too similar to the email address.")
	}
	if commonPasswords[strings.ToLower(password)] {
		out = append(out, "This password is too common.")
	}
	if password != "" && strings.IndexFunc(password, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		out = append(out, "This password is entirely numeric.")
	}
	return out
}

// tooSimilar is Django's UserAttributeSimilarityValidator for one attribute: the password is
// compared with the whole value and with each part of it between non-word characters.
func tooSimilar(password, value string) bool {
	if value == "" {
		return false
	}
	password = strings.ToLower(password)
	value = strings.ToLower(value)
	parts := append(nonWordRuns.Split(value, -1), value)
	for _, part := range parts {
		if part == "" || farLonger(password, part) {
			continue
		}
		if quickRatio(password, part) >= maxPasswordSimilarity {
			return true
		}
	}
	return false
}

var nonWordRuns = regexp.MustCompile(`[^\p{L}\p{N}_]+`)

// farLonger skips parts that cannot reach the similarity bound against a password at least
// ten times longer, as Django's exceeds_maximum_length_ratio does.
func farLonger(password, part string) bool {
	p, v := utf8.RuneCountInString(password), utf8.RuneCountInString(part)
	return p >= 10*v && float64(v) < maxPasswordSimilarity/2*float64(p)
}

// quickRatio is Python's difflib.SequenceMatcher.quick_ratio, which Django uses: twice the
// number of characters the two strings share, counted with multiplicity, over their total
// length.
func quickRatio(a, b string) float64 {
	counts := map[rune]int{}
	for _, r := range b {
		counts[r]++
	}
	matches := 0
	for _, r := range a {
		if counts[r] > 0 {
			counts[r]--
			matches++
		}
	}
	total := utf8.RuneCountInString(a) + utf8.RuneCountInString(b)
	if total == 0 {
		return 0
	}
	return 2 * float64(matches) / float64(total)
}

// commonPasswords lists a few of the most used passwords of at least 8 characters.
// NOTE: Django checks a list of 20,000; this short list only stops the most obvious ones.
var commonPasswords = map[string]bool{
	"password": true, "password1": true, "password123": true, "passw0rd": true, "iloveyou": true,
	"qwertyuiop": true, "qwerty123": true, "1q2w3e4r": true, "1qaz2wsx": true, "sunshine": true,
	"princess": true, "football": true, "baseball": true, "welcome1": true, "trustno1": true,
	"superman": true, "michael1": true, "abcd1234": true, "zaq12wsx": true, "letmein1": true,
}
