package store

import (
	"bufio"
	"bytes"
	"testing"
)

func TestCopyUnescaperSplitsAnywhere(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, copied, want string
	}{
		{"plain line", "{\"a\": 1}\n", "{\"a\": 1}\n"},
		{"escaped backslash", `{"p": "c:\\\\dir"}` + "\n", `{"p": "c:\\dir"}` + "\n"},
		{"newline tab and carriage return", `a\nb\tc\rd` + "\n", "a\nb\tc\rd\n"},
		{"escape at the end", `ab\\`, `ab\`},
		{"other escaped byte kept", `a\xb`, "axb"},
		{"several lines", "{}\n" + `{"q": "\\\\"}` + "\n{}\n", "{}\n" + `{"q": "\\"}` + "\n{}\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for split := 0; split <= len(tt.copied); split++ {
				got := unescapeChunks(t, []byte(tt.copied[:split]), []byte(tt.copied[split:]))
				if got != tt.want {
					t.Errorf("split at %d: got %q, want %q", split, got, tt.want)
				}
			}
			var bytewise [][]byte
			for i := range len(tt.copied) {
				bytewise = append(bytewise, []byte{tt.copied[i]})
			}
			if got := unescapeChunks(t, bytewise...); got != tt.want {
				t.Errorf("one byte per write: got %q, want %q", got, tt.want)
			}
		})
	}
}

// unescapeChunks writes each chunk to a copyUnescaper and returns what came out.
func unescapeChunks(t *testing.T, chunks ...[]byte) string {
	t.Helper()
	var out bytes.Buffer
	u := &copyUnescaper{w: bufio.NewWriterSize(&out, 16)}
	for _, c := range chunks {
		n, err := u.Write(c)
		if err != nil {
			t.Fatalf("Write(%q): %v", c, err)
		}
		if n != len(c) {
			t.Fatalf("Write(%q) = %d, want %d", c, n, len(c))
		}
	}
	if err := u.w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
