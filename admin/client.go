package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Client talks to a running daemon over its admin socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: 5 * time.Minute}}
}

// Reload asks the daemon to reload its configuration.
func (c *Client) Reload(force bool) (ReloadReply, error) {
	var r ReloadReply
	q := ""
	if force {
		q = "?force=1"
	}
	return r, c.do("POST", "/v1/reload"+q, nil, &r)
}

// LastReload returns the outcome of the daemon's last reload.
func (c *Client) LastReload() (ReloadReply, error) {
	var r ReloadReply
	return r, c.do("GET", "/v1/reload", nil, &r)
}

// Plan asks what a reload from path would change.
func (c *Client) Plan(path string) (PlanReply, error) {
	var r PlanReply
	return r, c.do("POST", "/v1/plan", PlanRequest{Path: path}, &r)
}

// Status returns the daemon's live tree as raw JSON.
func (c *Client) Status() (json.RawMessage, error) {
	var r json.RawMessage
	return r, c.do("GET", "/v1/status", nil, &r)
}

// CloseSession force-closes the sessions of initiator on target.
func (c *Client) CloseSession(target, initiator string) (CloseReply, error) {
	var r CloseReply
	return r, c.do("POST", "/v1/sessions/close", CloseRequest{Target: target, Initiator: initiator}, &r)
}

// Cluster asks for an administrative change to a gateway of the
// daemon's cluster (op "drain", "undrain" or "evict").
func (c *Client) Cluster(op, gateway string) (ClusterReply, error) {
	var r ClusterReply
	return r, c.do("POST", "/v1/cluster", ClusterRequest{Op: op, Gateway: gateway}, &r)
}

func (c *Client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://scstd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon at %s (is `scstd run` running, and is -admin-socket right?): %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("daemon answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
