package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
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

func TestEncodeCopyRowsCompactsAndEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, record, wantValue string
	}{
		{"spaces removed", `{"a": 1, "b": [1, 2]}`, `{"a":1,"b":[1,2]}`},
		{"whitespace between tokens", "{\n\t\"a\" :\r\n 1\n}", `{"a":1}`},
		{"escaped backslash doubled", `{"p": "c:\\dir"}`, `{"p":"c:\\\\dir"}`},
		{"escaped newline and tab kept escaped", `{"q": "a\nb\tc"}`, `{"q":"a\\nb\\tc"}`},
		{"backslash first and last", `{"\\": "\\"}`, `{"\\\\":"\\\\"}`},
		{"spaces inside strings kept", `{"s": "a b"}`, `{"s":"a b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rows bytes.Buffer
			if err := encodeCopyRows(&rows, 7, DataItems, []json.RawMessage{json.RawMessage(tt.record)}); err != nil {
				t.Fatalf("encodeCopyRows(%q): %v", tt.record, err)
			}
			if want := "7\t1\t" + tt.wantValue + "\n"; rows.String() != want {
				t.Errorf("row = %q, want %q", rows.String(), want)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(tt.record)); err != nil {
				t.Fatal(err)
			}
			if got := unescapeChunks(t, []byte(tt.wantValue)); got != compact.String() {
				t.Errorf("unescaped value = %q, want the compact record %q", got, compact.String())
			}
		})
	}
}

func TestEncodeCopyRowsRejectsInvalidJSON(t *testing.T) {
	t.Parallel()
	records := []json.RawMessage{json.RawMessage(`{}`), json.RawMessage("{\"raw\": \"tab\there\"}")}
	var rows bytes.Buffer
	err := encodeCopyRows(&rows, 7, DataItems, records)
	if err == nil {
		t.Fatalf("a raw tab in a string was accepted: %q", rows.String())
	}
	if !strings.Contains(err.Error(), "record 1") {
		t.Errorf("error %q does not name record 1", err)
	}
}
