package bench

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// words fill item descriptions; a fixed list keeps runs comparable.
var words = []string{"quote", "book", "price", "stock", "author", "review", "page", "title", "light", "river",
	"stone", "paper", "garden", "window", "silver", "market", "letter", "summer", "story", "travel"}

// minItemBytes is the smallest item makeItem can make: its fixed fields with a ten-digit i.
const minItemBytes = 128

// makeItem returns a JSON object of exactly size bytes (size >= minItemBytes) that looks like
// a scraped item, different for each i.
func makeItem(i, size int) []byte {
	var b bytes.Buffer
	b.Grow(size)
	fmt.Fprintf(&b, `{"url": "https://books.example/i/%d", "title": "Item %d", "price": %d.%02d, "description": "`,
		i, i, i%500, i%100)
	const tail = `"}`
	for n := i; b.Len() < size-len(tail); n = n*31 + 7 {
		w := words[uint(n)%uint(len(words))]
		room := size - len(tail) - b.Len()
		if len(w)+1 > room {
			b.WriteString("xxxxxxxxxxxxxxxxxxxxxxxx"[:min(room, 24)])
			continue
		}
		b.WriteString(w)
		b.WriteByte(' ')
	}
	b.WriteString(tail)
	return b.Bytes()
}

// writeCopyRow writes one row of COPY text format for job_data (job_id, kind, data). Items
// from makeItem have no tab, newline or backslash, so data needs no escaping.
func writeCopyRow(w io.Writer, jid int64, item []byte) error {
	var prefix [32]byte
	row := strconv.AppendInt(prefix[:0], jid, 10)
	row = append(row, "\t1\t"...)
	if _, err := w.Write(row); err != nil {
		return err
	}
	if _, err := w.Write(item); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'})
	return err
}
