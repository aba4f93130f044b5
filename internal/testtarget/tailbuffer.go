package testtarget

import "sync"

// tailBuffer is an io.Writer that keeps the last max bytes written to it.
// The daemon's stdout and stderr are written from the exec package's copy
// goroutines while tests read them, so it is safe for concurrent use.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write appends p, dropping the oldest bytes beyond max.
func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
		w.dropped = true
	}
	return len(p), nil
}

// String returns what is kept, marked when older output was dropped.
func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped {
		return "[earlier output dropped]\n" + string(w.b)
	}
	return string(w.b)
}
