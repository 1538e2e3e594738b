package worker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/drum-go/drum/ipc"
)

// Request bodies: a size limit (413 before reading when Content-Length says so, else as
// soon as the limit is crossed), a read deadline (408), and spooling of big bodies to an
// unlinked temporary file that is mapped into memory for the predictor, so big uploads
// never sit on the Go heap.

// abandonGrace is how long a spooled body stays mapped after a predictor call that may
// still be writing it (the predictor died or timed out and is being killed): the write
// fails as soon as the process is gone, well within this.
const abandonGrace = time.Minute

// payload is a request body, in a pooled buffer or spooled to a mapped file.
type payload struct {
	data   []byte
	buf    *[]byte  // in memory (pooled)
	file   *os.File // spooled; already unlinked
	mapped []byte
	once   sync.Once
}

// release frees the body once nothing reads it any more.
func (p *payload) release() {
	p.once.Do(func() {
		if p.buf != nil {
			putBuf(p.buf)
		}
		if p.mapped != nil {
			_ = syscall.Munmap(p.mapped)
		}
		if p.file != nil {
			p.file.Close()
		}
	})
}

// abandon is release after a predictor call that failed in a way that may leave a write
// of the body in progress: a pooled buffer is left to the GC, a mapping is kept a while.
func (p *payload) abandon() {
	if p.mapped == nil {
		p.once.Do(func() {
			if p.file != nil {
				p.file.Close()
			}
		})
		return
	}
	time.AfterFunc(abandonGrace, p.release)
}

func (h *handler) tooLarge() *httpError {
	h.counters().reject(ipc.RejectBodyTooLarge)
	return &httpError{status: http.StatusRequestEntityTooLarge, closeConn: true,
		msg: fmt.Sprintf("ERROR: the request body is larger than the limit of %d bytes", h.maxBody)}
}

// bodyReadError turns a failed body read into its answer: 408 past the body deadline,
// else Werkzeug's 400.
func (h *handler) bodyReadError(err error) *httpError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		h.counters().reject(ipc.RejectBodyTimeout)
		return &httpError{status: http.StatusRequestTimeout, closeConn: true,
			msg: fmt.Sprintf("ERROR: the request body did not arrive within %s", h.bodyTimeout)}
	}
	return errBadRequest
}

// readPayload reads the whole body: into a pooled buffer up to the spool threshold,
// beyond it into a temporary file that is mapped read-only. Release the payload with
// release (or abandon).
func (h *handler) readPayload(r *http.Request) (*payload, *httpError) {
	if r.ContentLength > h.maxBody {
		return nil, h.tooLarge()
	}
	if r.ContentLength >= 0 && r.ContentLength <= h.spoolThreshold {
		buf, herr := h.readBody(r)
		if herr != nil {
			return nil, herr
		}
		return &payload{data: *buf, buf: buf}, nil
	}
	var head []byte
	var buf *[]byte
	if r.ContentLength < 0 {
		// Unknown length: keep it in memory unless it outgrows the threshold.
		memLimit := min(h.spoolThreshold, h.maxBody)
		buf = getBuf()
		b, err := readUpTo(r.Body, (*buf)[:0], memLimit+1)
		*buf = b
		if err != nil {
			putBuf(buf)
			return nil, h.bodyReadError(err)
		}
		if int64(len(b)) <= memLimit {
			return &payload{data: b, buf: buf}, nil
		}
		if int64(len(b)) > h.maxBody {
			putBuf(buf)
			return nil, h.tooLarge()
		}
		head = b
	}
	p, herr := h.spool(r.Body, head)
	if buf != nil {
		putBuf(buf)
	}
	return p, herr
}

// readUpTo appends from r to b until EOF or until b holds limit bytes.
func readUpTo(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for int64(len(b)) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		end := min(int64(cap(b)), limit)
		n, err := r.Read(b[len(b):end])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// spool writes head and the rest of body to an unlinked temporary file and maps it.
func (h *handler) spool(body io.Reader, head []byte) (*payload, *httpError) {
	f, err := os.CreateTemp(h.spoolDir, "drum-body-*")
	if err != nil {
		h.log.Error("cannot spool a request body", "error", err)
		return nil, &httpError{status: http.StatusInternalServerError, msg: "ERROR: cannot store the request body: " + err.Error()}
	}
	// Unlinked at once: nothing is left behind, whatever happens to this process.
	_ = os.Remove(f.Name())
	fail := func(e *httpError) (*payload, *httpError) { f.Close(); return nil, e }
	if _, err := f.Write(head); err != nil {
		return fail(&httpError{status: http.StatusInternalServerError, msg: "ERROR: cannot store the request body: " + err.Error()})
	}
	cbuf := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(onlyWriter{f}, io.LimitReader(body, h.maxBody-int64(len(head))+1), *cbuf)
	copyBufs.Put(cbuf)
	size := int64(len(head)) + n
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return fail(&httpError{status: http.StatusInternalServerError, msg: "ERROR: cannot store the request body: " + we.err.Error()})
		}
		return fail(h.bodyReadError(err))
	}
	if size > h.maxBody {
		return fail(h.tooLarge())
	}
	if size == 0 {
		f.Close()
		return &payload{}, nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fail(&httpError{status: http.StatusInternalServerError, msg: "ERROR: cannot map the request body: " + err.Error()})
	}
	h.counters().spooled.Add(1)
	return &payload{data: m, file: f, mapped: m}, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// onlyWriter hides the file's ReadFrom, so io.CopyBuffer uses the pooled buffer and
// write failures are told apart from read failures.
type onlyWriter struct{ f *os.File }

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

func (w onlyWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// deadlineBody enforces the body read deadline: it is set when the request starts and
// cleared once the body has been read, so it never cuts a prediction that runs after
// the upload (Go watches the idle connection then, and a passing deadline would cancel
// the request).
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		// Only a complete body clears it: after a timeout the expired deadline must stay,
		// so Go gives up on the rest of the body and closes the connection.
		b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) })
	}
	return n, err
}

// limitBodyTime puts the body read deadline on r when it has a body.
func (h *handler) limitBodyTime(w http.ResponseWriter, r *http.Request) {
	if h.bodyTimeout <= 0 || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(h.bodyTimeout)); err != nil {
		return // not a real connection (tests)
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// A client still uploading when its connection is closed gets a TCP reset, and the reset
// can destroy the answer already in its receive buffer: a turned-away client would see a
// broken connection instead of 503 + Retry-After. So a rejected body up to
// rejectDrainBytes is read and dropped first (on a local network that costs well under a
// millisecond), for at most rejectDrainTime; a larger or slower one is cut off.
const (
	rejectDrainBytes = 1 << 20
	rejectDrainTime  = time.Second
)

// discardRejected reads and drops the body of a request that is being turned away.
func discardRejected(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength > rejectDrainBytes {
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(rejectDrainTime))
	_, _ = io.CopyN(io.Discard, r.Body, rejectDrainBytes+1)
}
