package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// encodeArrayRows writes one COPY text-format row per element of a JSON array of objects, in
// one pass: it splits the elements, drops the whitespace between tokens and escapes
// backslashes, without decoding anything. It checks the array's own grammar (brackets,
// commas, objects as elements), rejects control characters inside strings and backslashes
// outside them, and replaces escapes that Postgres cannot read back (see unstorableEscape).
// The grammar inside each object is left to Postgres, which checks every row when it stores
// it as json, so a row Postgres accepts is a whole JSON object of the array. In valid JSON a
// backslash is the only byte that COPY's text format needs escaped, since tabs, newlines and
// carriage returns cannot appear raw inside strings. It returns how many rows it wrote.
func encodeArrayRows(w *bytes.Buffer, jobID int64, kind DataKind, array []byte) (int, error) {
	prefix := fmt.Sprintf("%d\t%d\t", jobID, kind)
	i := skipSpace(array, 0)
	if i >= len(array) || array[i] != '[' {
		return 0, fmt.Errorf("expected a JSON array")
	}
	i = skipSpace(array, i+1)
	rows := 0
	if i < len(array) && array[i] == ']' {
		return 0, checkEnd(array, i+1)
	}
	for {
		if i >= len(array) {
			return rows, fmt.Errorf("the array is not closed")
		}
		if array[i] != '{' {
			return rows, fmt.Errorf("record %d is not a JSON object", rows)
		}
		w.WriteString(prefix)
		end, err := writeObject(w, array, i)
		if err != nil {
			return rows, fmt.Errorf("record %d: %w", rows, err)
		}
		w.WriteByte('\n')
		rows++
		i = skipSpace(array, end)
		switch {
		case i < len(array) && array[i] == ',':
			i = skipSpace(array, i+1)
		case i < len(array) && array[i] == ']':
			return rows, checkEnd(array, i+1)
		case i >= len(array):
			return rows, fmt.Errorf("the array is not closed")
		default:
			return rows, fmt.Errorf("expected ',' or ']' after record %d", rows-1)
		}
	}
}

// checkEnd reports anything but whitespace after the array.
func checkEnd(array []byte, i int) error {
	if skipSpace(array, i) != len(array) {
		return fmt.Errorf("unexpected data after the array")
	}
	return nil
}

// writeObject copies the object that starts at array[i] without the whitespace between its
// tokens and with its backslashes doubled, and returns the index after it.
func writeObject(w *bytes.Buffer, array []byte, i int) (int, error) {
	depth, start, n := 0, i, len(array)
	for i < n {
		switch array[i] {
		case ' ', '\t', '\n', '\r':
			w.Write(array[start:i])
			start = i + 1
		case '"':
			end, err := copyStringEnd(w, array, i+1, &start)
			if err != nil {
				return end, err
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				w.Write(array[start : i+1])
				return i + 1, nil
			}
		case '\\':
			// COPY would read it as an escape and store other bytes than were sent.
			return i, fmt.Errorf("a backslash outside a string")
		}
		i++
	}
	return i, fmt.Errorf("the object is not closed")
}

// Postgres stores \u0000 and lone UTF-16 surrogates (\ud800 to \udfff without their other
// half) in json, but fails wherever such a value is read as text or jsonb, so log filters and
// stats would fail with it. A record's \u0000 and lone surrogates are stored as \ufffd, the
// replacement character, of the same length.
const replacementDigits = "fffd"

// unstorableEscape reports whether the \u escape whose u is at b[u] is one that Postgres
// cannot read back. A high surrogate followed by a low one is stored. pairedLow is the
// position of that low surrogate's u, or -1 when there is none.
func unstorableEscape(b []byte, u, pairedLow int) (unstorable bool, nextPairedLow int) {
	r, ok := hex4(b[u+1:])
	switch {
	case !ok:
		return false, -1 // not valid JSON, which Postgres rejects
	case r == 0:
		return true, -1
	case r >= 0xd800 && r < 0xdc00:
		if low, ok := lowSurrogateEscape(b[u+5:]); ok && low {
			return false, u + 6
		}
		return true, -1
	case r >= 0xdc00 && r < 0xe000:
		return u != pairedLow, -1
	}
	return false, -1
}

// lowSurrogateEscape reports whether b starts with a \u escape of a low surrogate.
func lowSurrogateEscape(b []byte) (low, ok bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return false, false
	}
	r, ok := hex4(b[2:])
	return ok && r >= 0xdc00 && r < 0xe000, ok
}

// hex4 reads four hexadecimal digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// copyStringEnd scans the string whose contents start at array[i] and returns the index after
// its closing quote. At each backslash it writes the bytes from *start to it, then the
// backslash again for COPY, and moves *start past it. An escape that Postgres cannot read
// back becomes \ufffd (see unstorableEscape).
// Ordinary bytes are skipped eight at a time, then one at a time up to the next byte that
// is not ordinary.
func copyStringEnd(w *bytes.Buffer, array []byte, i int, start *int) (int, error) {
	n := len(array)
	pairedLow := -1
	for i < n {
		for i+8 <= n && ordinaryWord(binary.LittleEndian.Uint64(array[i:])) {
			i += 8
		}
		if i == n {
			break
		}
		c := array[i]
		for c != '"' && c != '\\' && c >= 0x20 {
			i++
			if i == n {
				return i, fmt.Errorf("the object is not closed")
			}
			c = array[i]
		}
		switch {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return i, fmt.Errorf("a control character (byte %d) inside a string; escape it", c)
		}
		// A backslash and the byte it escapes; a backslash of either kind is doubled.
		w.Write(array[*start : i+1])
		w.WriteByte('\\')
		*start = i + 1
		i++
		if i == n {
			break
		}
		switch c = array[i]; {
		case c == '\\':
			w.Write(array[*start : i+1])
			w.WriteByte('\\')
			*start = i + 1
		case c == 'u':
			var unstorable bool
			if unstorable, pairedLow = unstorableEscape(array, i, pairedLow); unstorable {
				w.WriteByte('u')
				w.WriteString(replacementDigits)
				i += len(replacementDigits)
				*start = i + 1
			}
		case c < 0x20:
			return i, fmt.Errorf("a control character (byte %d) inside a string; escape it", c)
		}
		i++
	}
	return i, fmt.Errorf("the object is not closed")
}

// Bytes of a uint64, for testing eight bytes at once.
const (
	eachByte = 0x0101010101010101
	highBits = 0x8080808080808080
)

// ordinaryWord reports whether none of the eight bytes in x is a quote, a backslash or a
// control character (below 0x20). (v - eachByte) &^ v has the high bit of a byte set where v
// has a zero byte, and (x - eachByte*0x20) &^ x where x has a byte below 0x20. Either may also
// set the bit of a byte above such a byte, which only sends that word to the byte loop.
func ordinaryWord(x uint64) bool {
	quote := x ^ (eachByte * '"')
	backslash := x ^ (eachByte * '\\')
	found := ((quote - eachByte) &^ quote) | ((backslash - eachByte) &^ backslash) | ((x - eachByte*0x20) &^ x)
	return found&highBits == 0
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// replaceUnstorableEscapes returns the JSON text b with the escapes in its strings that
// Postgres cannot read back replaced by \ufffd, as COPY rows have them (see
// unstorableEscape). b itself is left as it is.
func replaceUnstorableEscapes(b []byte) []byte {
	out := b
	inString := false
	pairedLow := -1
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			inString = !inString
		case b[i] == '\\' && inString:
			if i+1 < len(b) && b[i+1] == 'u' {
				var unstorable bool
				if unstorable, pairedLow = unstorableEscape(b, i+1, pairedLow); unstorable {
					if &out[0] == &b[0] {
						out = bytes.Clone(b)
					}
					copy(out[i+2:], replacementDigits)
				}
			}
			i++ // the escaped byte
		}
	}
	return out
}
