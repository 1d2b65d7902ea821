package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestCopyAndReadRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"exactly one chunk", Size},
		{"one chunk and a bit", Size + 7},
		{"several chunks", 5*Size + 123},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := make([]byte, tt.size)
			rng := rand.New(rand.NewPCG(1, uint64(tt.size)))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			var chunks [][]byte
			n, err := Copy(bytes.NewReader(data), func(c []byte) error {
				if len(c) > Size {
					t.Errorf("chunk of %d bytes, want at most %d", len(c), Size)
				}
				chunks = append(chunks, c)
				return nil
			})
			if err != nil || n != int64(tt.size) {
				t.Fatalf("Copy = %d, %v; want %d, nil", n, err, tt.size)
			}
			next := 0
			got, err := io.ReadAll(NewReader(func() ([]byte, error) {
				if next == len(chunks) {
					return nil, io.EOF
				}
				next++
				return chunks[next-1], nil
			}))
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("read %d bytes differing from the %d written", len(got), len(data))
			}
		})
	}
}

func TestReaderReturnsRecvError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	calls := 0
	r := NewReader(func() ([]byte, error) {
		calls++
		if calls == 1 {
			return []byte("ab"), nil
		}
		return nil, boom
	})
	got, err := io.ReadAll(r)
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
	if string(got) != "ab" {
		t.Errorf("read %q before the error, want %q", got, "ab")
	}
}

func TestWriterReturnsSendError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Copy(bytes.NewReader(make([]byte, 2*Size)), func([]byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
}
