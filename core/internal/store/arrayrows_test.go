package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

// encodeArrayRows must give the same rows as compacting and escaping each record on its own.
func TestEncodeArrayRowsMatchesRecordByRecord(t *testing.T) {
	t.Parallel()
	array := []byte(` [ {"a": 1, "s": "tab\there \"q\" back\\slash", "nested": {"x": [1, 2, {"y": "}"}]}},
		{"b" : "brace { and ] in a string", "u": "\u00e9\n"} , {}
	] `)
	var records []json.RawMessage
	if err := json.Unmarshal(array, &records); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := encodeCopyRows(&want, 7, DataItems, records); err != nil {
		t.Fatal(err)
	}
	n, err := encodeArrayRows(&got, 7, DataItems, array)
	if err != nil {
		t.Fatalf("encodeArrayRows: %v", err)
	}
	if n != 3 {
		t.Errorf("rows = %d, want 3", n)
	}
	if got.String() != want.String() {
		t.Errorf("rows differ:\ngot  %q\nwant %q", got.String(), want.String())
	}
}

func TestEncodeArrayRowsRejects(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`{"a": 1}`, "expected a JSON array"},
		{`[{"a": 1}, 2]`, "record 1 is not a JSON object"},
		{`["x"]`, "record 0 is not a JSON object"},
		{`[{"a": 1} {"b": 2}]`, "expected ',' or ']' after record 0"},
		{`[{"a": 1},]`, "record 1 is not a JSON object"},
		{"[{\"a\": \"tab\there\"}]", "record 0: a control character"},
		{"[{\"a\": \"a long string, then a newline\n\"}]", "record 0: a control character"},
		{`[{"a": 1}`, "the array is not closed"},
		{`[{"a": [1}`, "record 0: the object is not closed"},
		{`[{"a": 1}] x`, "unexpected data after the array"},
		{`[{"a": 1\}]`, "record 0: a backslash outside a string"},
	} {
		var b bytes.Buffer
		if _, err := encodeArrayRows(&b, 1, DataItems, []byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("encodeArrayRows(%s) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func FuzzEncodeArrayRows(f *testing.F) {
	f.Add(`[{"a": "b\\c", "d": [1, {"e": " x "}]}]`)
	f.Add(`[{"nul\u0000": "\u0000 and \\u0000 and \\\u0000"}]`)
	f.Add(`[{"s": "\ud83d\ude00 \ud800 \udc00 \uD800\uDC00 \ud800\ud800\udc00 \ud800\\udc00 \udbff"}]`)
	f.Add(`[{"description": "eight by eight: \\\\ then \" and \\u00e9 past the first word", "n": "ends in \\\\"}]`)
	f.Fuzz(func(t *testing.T, in string) {
		var records []json.RawMessage
		if json.Unmarshal([]byte(in), &records) != nil {
			return
		}
		for _, r := range records {
			if len(r) == 0 || r[0] != '{' {
				return
			}
		}
		var want, got bytes.Buffer
		if err := encodeCopyRows(&want, 1, DataItems, records); err != nil {
			return
		}
		if _, err := encodeArrayRows(&got, 1, DataItems, []byte(in)); err != nil {
			t.Fatalf("encodeArrayRows(%q): %v", in, err)
		}
		if got.String() != want.String() {
			t.Fatalf("rows differ for %q:\ngot  %q\nwant %q", in, got.String(), want.String())
		}
	})
}

// ordinaryWord must agree with a test of each byte, for every byte value at every position
// and for words of several unusual bytes.
func TestOrdinaryWord(t *testing.T) {
	t.Parallel()
	ordinary := func(b byte) bool { return b != '"' && b != '\\' && b >= 0x20 }
	check := func(word [8]byte) {
		want := true
		for _, b := range word {
			want = want && ordinary(b)
		}
		if got := ordinaryWord(binary.LittleEndian.Uint64(word[:])); got != want {
			t.Fatalf("ordinaryWord(%q) = %v, want %v", word[:], got, want)
		}
	}
	for _, fill := range []byte{'a', ' ', 0x7f, 0x80, 0xff, '!', '#', '[', ']'} {
		for pos := range 8 {
			for b := range 256 {
				word := [8]byte{fill, fill, fill, fill, fill, fill, fill, fill}
				word[pos] = byte(b)
				check(word)
			}
		}
	}
	unusual := []byte{0, 0x01, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xa2, 0xdc, 0xff}
	for _, a := range unusual {
		for _, b := range unusual {
			for pos := range 7 {
				word := [8]byte{'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x'}
				word[pos], word[pos+1] = a, b
				check(word)
				word[7-pos] = a
				check(word)
			}
		}
	}
}

// Escapes that Postgres stores in json but cannot read back as text become \ufffd. Pairs of
// surrogates, and escaped backslashes before "u", stay.
func TestUnstorableEscapesReplaced(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`"\u0000"`, `"\ufffd"`},
		{`"\ud83d\ude00"`, `"\ud83d\ude00"`},
		{`"\uD83D\uDE00"`, `"\uD83D\uDE00"`},
		{`"\ud800"`, `"\ufffd"`},
		{`"\udc00"`, `"\ufffd"`},
		{`"x\ud800y\udc00"`, `"x\ufffdy\ufffd"`},
		{`"\ud800\ud800\udc00"`, `"\ufffd\ud800\udc00"`},
		{`"\udc00\ud800"`, `"\ufffd\ufffd"`},
		{`"\ud800\\udc00"`, `"\ufffd\\udc00"`},
		{`"\\u0000 \\ud800"`, `"\\u0000 \\ud800"`},
		{`"\u00e9 \u12"`, `"\u00e9 \u12"`},
		{`{"\ud800": ["\u0000"]}`, `{"\ufffd": ["\ufffd"]}`},
	} {
		if got := string(replaceUnstorableEscapes([]byte(tt.in))); got != tt.want {
			t.Errorf("replaceUnstorableEscapes(%s) = %s, want %s", tt.in, got, tt.want)
		}
		if !strings.HasPrefix(tt.in, "{") && !strings.HasSuffix(tt.in, `\u12"`) {
			var rows bytes.Buffer
			if _, err := encodeArrayRows(&rows, 1, DataItems, []byte(`[{"v":`+tt.in+`}]`)); err != nil {
				t.Fatalf("encodeArrayRows(%s): %v", tt.in, err)
			}
			want := "1\t1\t{\"v\":" + strings.ReplaceAll(tt.want, `\`, `\\`) + "}\n"
			if rows.String() != want {
				t.Errorf("encodeArrayRows(%s) = %q, want %q", tt.in, rows.String(), want)
			}
		}
	}
}
