package store

import (
	"bytes"
	"fmt"
)

// encodeArrayRows writes one COPY text-format row per element of a JSON array of objects, in
// one pass: it splits the elements, drops the whitespace between tokens and escapes
// backslashes, without decoding anything. The array must be valid JSON, as a json.Decoder has
// already checked it; in valid JSON, a backslash is the only byte that COPY's text format needs
// escaped, since tabs, newlines and carriage returns cannot appear raw inside strings. It
// returns how many rows it wrote.
func encodeArrayRows(w *bytes.Buffer, jobID int64, kind DataKind, array []byte) (int, error) {
	prefix := fmt.Sprintf("%d\t%d\t", jobID, kind)
	i := skipSpace(array, 0)
	if i >= len(array) || array[i] != '[' {
		return 0, fmt.Errorf("records: expected a JSON array")
	}
	i++
	rows := 0
	for {
		i = skipSpace(array, i)
		if i >= len(array) {
			return rows, fmt.Errorf("records: the array is not closed")
		}
		if array[i] == ']' {
			return rows, nil
		}
		if array[i] != '{' {
			return rows, fmt.Errorf("record %d is not a JSON object", rows)
		}
		w.WriteString(prefix)
		i = writeObject(w, array, i)
		w.WriteByte('\n')
		rows++
		i = skipSpace(array, i)
		if i < len(array) && array[i] == ',' {
			i++
		}
	}
}

// writeObject copies the object that starts at array[i] without the whitespace between its
// tokens and with its backslashes doubled, and returns the index after it.
func writeObject(w *bytes.Buffer, array []byte, i int) int {
	depth, inString, escaped := 0, false, false
	start := i
	for ; i < len(array); i++ {
		c := array[i]
		if inString {
			if c == '\\' {
				// Every backslash is doubled for COPY, escaped or escaping.
				w.Write(array[start : i+1])
				w.WriteByte('\\')
				start = i + 1
			}
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			w.Write(array[start:i])
			start = i + 1
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				w.Write(array[start : i+1])
				return i + 1
			}
		}
	}
	w.Write(array[start:i])
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
