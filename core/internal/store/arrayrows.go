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
// outside them, and replaces escaped NULs (see nulReplacement). The grammar inside each
// object is left to Postgres, which checks every row when it stores it as json, so a row
// Postgres accepts is a whole JSON object of the array. In valid JSON a backslash is the
// only byte that COPY's text format needs escaped, since tabs, newlines and carriage returns
// cannot appear raw inside strings. It returns how many rows it wrote.
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

// Postgres text cannot hold the NUL character, so json values holding \u0000 fail wherever
// they are read as text or jsonb. A record's \u0000 is stored as \ufffd, the replacement
// character, of the same length.
var nulDigits = []byte("0000")

const nulReplacement = "ufffd"

// copyStringEnd scans the string whose contents start at array[i] and returns the index after
// its closing quote. At each backslash it writes the bytes from *start to it, then the
// backslash again for COPY, and moves *start past it; an escaped NUL becomes \ufffd.
// Ordinary bytes are skipped eight at a time, then one at a time up to the next byte that
// is not ordinary.
func copyStringEnd(w *bytes.Buffer, array []byte, i int, start *int) (int, error) {
	n := len(array)
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
		case c == 'u' && bytes.HasPrefix(array[i+1:], nulDigits):
			w.WriteString(nulReplacement)
			i += len(nulDigits)
			*start = i + 1
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

// replaceNULEscapes returns the JSON text b with each \u0000 escape in its strings replaced
// by \ufffd, as COPY rows have them. b itself is left as it is.
func replaceNULEscapes(b []byte) []byte {
	out := b
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"':
			inString = !inString
		case b[i] == '\\' && inString:
			if bytes.HasPrefix(b[i+1:], []byte("u0000")) {
				if &out[0] == &b[0] {
					out = bytes.Clone(b)
				}
				copy(out[i+1:], nulReplacement)
			}
			i++ // the escaped byte
		}
	}
	return out
}
