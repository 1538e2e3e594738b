// Package ipc frames the messages exchanged between drum's processes: the master and its
// workers (control channel over a socketpair) and a worker and its predictor (two pipes).
//
// Every message is one frame, little-endian:
//
//	offset  size  field
//	0       4     n: number of bytes that follow this field (16 + metaLen + dataLen)
//	4       1     kind (see Kind)
//	5       3     reserved, zero
//	8       8     id: request id (0 for messages that are not requests or replies)
//	16      4     metaLen
//	20      m     meta: a JSON object describing the message
//	20+m    rest  data: opaque payload bytes (CSV body, float64 matrix, ...)
//
// Meta is small and self-describing; data carries bulk bytes so they are never
// re-encoded as JSON. A reader reuses one buffer across frames, so the slices it returns
// are only valid until the next Read.
package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Kind says what a frame carries.
type Kind uint8

// Master <-> worker control messages.
const (
	KindConfig    Kind = 1 // master -> worker: the validated configuration (meta)
	KindReady     Kind = 2 // worker -> master: predictor loaded, accepting
	KindHeartbeat Kind = 3 // worker -> master: alive, with counters (meta)
	KindFailed    Kind = 4 // worker -> master: could not start; meta carries the reason
	KindStop      Kind = 5 // master -> worker: stop accepting and drain (meta: graceful)
	KindStats     Kind = 6 // master -> worker: the whole server's figures (meta: ServerStats)
)

// Worker <-> predictor messages.
const (
	KindHello    Kind = 10 // predictor -> worker: model loaded (or failed), capabilities
	KindRequest  Kind = 11 // worker -> predictor: one call, id set
	KindReply    Kind = 12 // predictor -> worker: answer to the call with the same id
	KindShutdown Kind = 13 // worker -> predictor: exit cleanly
)

const headerLen = 20

// MaxFrame bounds one frame so a corrupt length cannot make a reader allocate gigabytes.
const MaxFrame = 2<<30 - 1

// ErrFrameTooLarge is returned for frames past MaxFrame.
var ErrFrameTooLarge = errors.New("ipc: frame too large")

// Frame is one decoded message.
type Frame struct {
	Kind Kind
	ID   uint64
	Meta []byte
	Data []byte
}

// Writer writes frames; it is safe for concurrent use (one frame is written atomically
// with respect to other Write calls on the same Writer).
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	hdr [headerLen]byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write sends one frame and flushes it.
func (fw *Writer) Write(kind Kind, id uint64, meta, data []byte) error {
	n := uint64(16) + uint64(len(meta)) + uint64(len(data))
	if n > MaxFrame {
		return ErrFrameTooLarge
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	h := fw.hdr[:]
	binary.LittleEndian.PutUint32(h[0:4], uint32(n))
	h[4] = byte(kind)
	h[5], h[6], h[7] = 0, 0, 0
	binary.LittleEndian.PutUint64(h[8:16], id)
	binary.LittleEndian.PutUint32(h[16:20], uint32(len(meta)))
	if _, err := fw.w.Write(h); err != nil {
		return fmt.Errorf("ipc: write header: %w", err)
	}
	if _, err := fw.w.Write(meta); err != nil {
		return fmt.Errorf("ipc: write meta: %w", err)
	}
	if len(data) > 0 {
		// Large payloads bypass the buffer: bufio writes them straight through once
		// the header is flushed, so they are not copied.
		if _, err := fw.w.Write(data); err != nil {
			return fmt.Errorf("ipc: write data: %w", err)
		}
	}
	if err := fw.w.Flush(); err != nil {
		return fmt.Errorf("ipc: flush: %w", err)
	}
	return nil
}

// Reader reads frames, reusing one buffer.
type Reader struct {
	r   *bufio.Reader
	hdr [headerLen]byte
	buf []byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Read returns the next frame. Meta and Data alias the reader's buffer and are valid
// until the next call; copy them to keep them. io.EOF means the peer closed cleanly
// between frames; io.ErrUnexpectedEOF means it died mid-frame.
func (fr *Reader) Read() (Frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:4]); err != nil {
		return Frame{}, err
	}
	n := binary.LittleEndian.Uint32(fr.hdr[0:4])
	if n < 16 {
		return Frame{}, fmt.Errorf("ipc: bad frame length %d", n)
	}
	if n > MaxFrame {
		return Frame{}, ErrFrameTooLarge
	}
	if _, err := io.ReadFull(fr.r, fr.hdr[4:headerLen]); err != nil {
		return Frame{}, unexpected(err)
	}
	metaLen := binary.LittleEndian.Uint32(fr.hdr[16:20])
	if uint64(metaLen) > uint64(n)-16 {
		return Frame{}, fmt.Errorf("ipc: meta length %d exceeds frame length %d", metaLen, n)
	}
	body := int(n) - 16
	if cap(fr.buf) < body {
		fr.buf = make([]byte, body)
	}
	fr.buf = fr.buf[:body]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		return Frame{}, unexpected(err)
	}
	return Frame{
		Kind: Kind(fr.hdr[4]),
		ID:   binary.LittleEndian.Uint64(fr.hdr[8:16]),
		Meta: fr.buf[:metaLen],
		Data: fr.buf[metaLen:],
	}, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
