package store

import (
	"bytes"
	"sync"
)

// maxPooledBuffer is the largest buffer a BufferPool keeps. A rare huge batch is left to the
// garbage collector rather than held for the next one.
const maxPooledBuffer = 8 << 20

// BufferPool reuses the buffers of ingest batches, which are about as large as a batch is
// (500 KB for 500 items of 1 KB). The runtime zeroes a fresh buffer of that size and soon
// collects it. With jobs sending batch after batch, that took a sixth of the API's CPU time
// on the ingest path.
type BufferPool struct {
	pool sync.Pool
}

// NewBufferPool returns an empty pool.
func NewBufferPool() *BufferPool {
	return &BufferPool{pool: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

// Get returns an empty buffer.
func (p *BufferPool) Get() *bytes.Buffer {
	b := p.pool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// Put gives b back for reuse. Nothing may use b, or bytes read from it, afterwards.
func (p *BufferPool) Put(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		p.pool.Put(b)
	}
}
