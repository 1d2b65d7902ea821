package callstream

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// keyBytes is the length of the key that opens a connection to a plugin's
// call socket.
const keyBytes = 32

// keyAccepted is the byte a plugin writes once it has read the right key.
const keyAccepted byte = 1

// keyTimeout is how long each side of a new connection to the call socket
// waits for the other's part of the key exchange.
const keyTimeout = 10 * time.Second

// maxRequestBytes is the largest Request a plugin reads on its socket: the
// limit of a gRPC server that sets none.
const maxRequestBytes = 4 << 20

// maxFrameBytes is the largest message a frame carries. The 4-byte length
// holds more, but an int on 32-bit systems does not.
const maxFrameBytes = math.MaxInt32

// maxKeptBuffer is the largest scratch space a connection keeps between
// frames, so that one large reply does not hold its memory.
const maxKeptBuffer = 1 << 20

// writeFrame encodes m after its length in 4 bytes, big-endian, into buf, and
// writes it with one call. Over limit it writes nothing and returns a
// RESOURCE_EXHAUSTED status. It returns buf for the next frame.
func writeFrame(w io.Writer, m proto.Message, buf []byte, limit int) ([]byte, error) {
	buf, err := proto.MarshalOptions{}.MarshalAppend(append(buf[:0], 0, 0, 0, 0), m)
	if err != nil {
		return buf, status.Errorf(codes.Internal, "call socket: encode a %T: %v", m, err)
	}
	size := len(buf) - 4
	if size > limit {
		return buf, status.Errorf(codes.ResourceExhausted, "call socket: message of %d bytes is over the limit of %d", size, limit)
	}
	binary.BigEndian.PutUint32(buf, uint32(size))
	_, err = w.Write(buf)
	return buf, err
}

// readFrame reads one frame into m, with buf as its scratch space, and returns
// buf for the next frame. A frame over limit is left unread and gives a
// RESOURCE_EXHAUSTED status, as gRPC gives for a message over its limit.
func readFrame(r *bufio.Reader, m proto.Message, buf []byte, limit int) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return buf, err
	}
	size := binary.BigEndian.Uint32(header[:])
	if uint64(size) > uint64(limit) {
		return buf, status.Errorf(codes.ResourceExhausted, "call socket: received a message of %d bytes, over the limit of %d", size, limit)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	// Unmarshal copies the bytes it keeps, so buf can be used again.
	if err := proto.Unmarshal(buf, m); err != nil {
		return buf, status.Errorf(codes.Internal, "call socket: decode a %T: %v", m, err)
	}
	if cap(buf) > maxKeptBuffer {
		buf = nil
	}
	return buf, nil
}
