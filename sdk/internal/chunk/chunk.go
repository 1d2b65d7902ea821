// Package chunk splits a byte stream into gRPC messages and joins them back,
// for the RPCs that stream project archives.
package chunk

import "io"

// Size is the largest chunk a Writer sends: 64 KiB keeps each message far
// below gRPC's default 4 MiB message limit while keeping per-message overhead
// small.
const Size = 64 << 10

// Writer buffers what is written to it and passes it to send in chunks of
// Size bytes. Call Flush after the last Write to send the rest.
type Writer struct {
	send func([]byte) error
	buf  []byte
}

// NewWriter returns a Writer that sends each chunk with send. Each chunk is a
// new slice, because gRPC may read a message after SendMsg returns.
func NewWriter(send func([]byte) error) *Writer {
	return &Writer{send: send}
}

// Write buffers p, sending every chunk that fills up.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, Size)
		}
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		written += n
		if len(w.buf) == cap(w.buf) {
			if err := w.Flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Flush sends the buffered bytes, if any.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	buf := w.buf
	w.buf = nil
	return w.send(buf)
}

// Reader reads the bytes of the chunks that recv returns, in order. recv
// returns io.EOF after the last chunk.
type Reader struct {
	recv func() ([]byte, error)
	buf  []byte
	err  error
}

// NewReader returns a Reader over the chunks that recv returns.
func NewReader(recv func() ([]byte, error)) *Reader {
	return &Reader{recv: recv}
}

// Read copies the next bytes into p. It returns recv's error once every
// chunk received before it has been read.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.buf, r.err = r.recv()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Copy sends everything src returns in chunks of Size bytes.
func Copy(src io.Reader, send func([]byte) error) (int64, error) {
	w := NewWriter(send)
	n, err := io.Copy(w, src)
	if err != nil {
		return n, err
	}
	return n, w.Flush()
}
