package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// ReloadReply is the outcome of one reload, applied or rejected.
type ReloadReply struct {
	OK bool `json:"ok"`
	// Generation counts applied reloads; it is unchanged by a rejected one.
	Generation uint64 `json:"generation"`
	// ConfigHash is the SHA-256 of the configuration the engine runs, so
	// that tooling can tell whether the daemon matches the file.
	ConfigHash string    `json:"config_hash"`
	Time       time.Time `json:"time"`
	// Changes is the number of operations in the plan; Plan prints them.
	Changes int             `json:"changes"`
	Plan    string          `json:"plan,omitempty"`
	Detail  json.RawMessage `json:"plan_detail,omitempty"`
	// Error and Diagnostics say why a reload was rejected.
	Error       string `json:"error,omitempty"`
	Diagnostics string `json:"diagnostics,omitempty"`
	// Trigger is what started the reload: "start", "sighup", "watch" or
	// "admin" (`scstd reload`); requests that arrived while another reload
	// ran are served by one reload, whose Trigger joins theirs with "+"
	// ("sighup+watch").
	Trigger string `json:"trigger,omitempty"`
	// Forced is true for `scstd reload -force`.
	Forced bool `json:"forced,omitempty"`
	// Warnings are what an applied reload did not do as the file says,
	// or what the file's author should look at: configuration warnings
	// (file:line: summary), devices left offline with why, attributes
	// that apply at the next start.
	Warnings []string `json:"warnings,omitempty"`
	// AlreadyApplied is set on a reload that changed nothing because an
	// earlier reload (by another trigger, typically the file watch)
	// already applied the configuration as it is now: that reload, with
	// its plan.
	AlreadyApplied *ReloadReply `json:"already_applied,omitempty"`
}

// DaemonInfo says which daemon answered, so that a plan says what it was
// compared with.
type DaemonInfo struct {
	PID int `json:"pid"`
	// Config is the configuration path the daemon reloads from.
	Config string `json:"config"`
	// Generation is the snapshot generation running.
	Generation uint64 `json:"generation"`
	// Watch is true when the daemon watches Config and applies edits on
	// its own.
	Watch bool `json:"watch"`
	// LastReload is the last reload's outcome, without its plan.
	LastReload ReloadReply `json:"last_reload"`
}

// PlanRequest asks what a reload from Path would change.
type PlanRequest struct {
	Path string `json:"path"`
}

// PlanReply is a plan that was computed and not applied.
type PlanReply struct {
	Changes     int             `json:"changes"`
	Plan        string          `json:"plan,omitempty"`
	Detail      json.RawMessage `json:"plan_detail,omitempty"`
	Error       string          `json:"error,omitempty"`
	Diagnostics string          `json:"diagnostics,omitempty"`
	// EmptyFiles are the configuration's files that hold zero bytes: a
	// reload ignores them unless forced.
	EmptyFiles []string `json:"empty_files,omitempty"`
	// Daemon is the daemon the plan was computed against.
	Daemon DaemonInfo `json:"daemon"`
}

// CloseRequest names the sessions to force-close.
type CloseRequest struct {
	Target    string `json:"target"`
	Initiator string `json:"initiator"`
}

// CloseReply says how many sessions were closed.
type CloseReply struct {
	Closed int    `json:"closed"`
	Error  string `json:"error,omitempty"`
}

// ClusterRequest asks for an administrative change to a gateway of the
// daemon's cluster: Op is "drain", "undrain" or "evict".
type ClusterRequest struct {
	Op      string `json:"op"`
	Gateway string `json:"gateway"`
}

// ClusterReply says what became of a ClusterRequest.
type ClusterReply struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ClusterHandler is a Handler of a daemon that can run in a cluster
// (scstd cluster).
type ClusterHandler interface {
	Cluster(ctx context.Context, op, gateway string) (string, error)
}

// Handler is what the daemon provides to the admin API.
type Handler interface {
	// Reload reloads the configuration and returns that reload's outcome:
	// it starts after the request arrived, so it reads the file as it is
	// now.
	Reload(ctx context.Context, force bool) ReloadReply
	LastReload() ReloadReply
	Plan(ctx context.Context, path string) PlanReply
	// Status returns a JSON-marshalable tree.
	Status(ctx context.Context) any
	CloseSession(target, initiator string) (int, error)
}

// Listen creates the admin socket at path with mode 0600, replacing a stale
// socket file left by a daemon that is gone. It refuses to take over the
// socket of a daemon that still answers.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s is in use by a running daemon", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

// NewServer returns the HTTP server of the admin API.
func NewServer(h Handler) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.Reload(r.Context(), r.URL.Query().Get("force") == "1"))
	})
	mux.HandleFunc("GET /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.LastReload())
	})
	mux.HandleFunc("POST /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		var req PlanRequest
		if err := decodeBody(r.Body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, h.Plan(r.Context(), req.Path))
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, h.Status(r.Context()))
	})
	mux.HandleFunc("POST /v1/sessions/close", func(w http.ResponseWriter, r *http.Request) {
		var req CloseRequest
		if err := decodeBody(r.Body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n, err := h.CloseSession(req.Target, req.Initiator)
		reply := CloseReply{Closed: n}
		if err != nil {
			reply.Error = err.Error()
		}
		writeJSON(w, reply)
	})
	mux.HandleFunc("POST /v1/cluster", func(w http.ResponseWriter, r *http.Request) {
		var req ClusterRequest
		if err := decodeBody(r.Body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var reply ClusterReply
		ch, ok := h.(ClusterHandler)
		if !ok {
			reply.Error = "this daemon runs no cluster"
			writeJSON(w, reply)
			return
		}
		msg, err := ch.Cluster(r.Context(), req.Op, req.Gateway)
		reply.Message = msg
		if err != nil {
			reply.Error = err.Error()
		}
		writeJSON(w, reply)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func decodeBody(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
