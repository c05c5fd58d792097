package control

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/filestore"
)

// Client talks to a flatstore control endpoint: OpenSIPS MI JSON-RPC over
// POST /mi, and plain HTTP requests beside it. It is what flatstore-ctl and
// the tests use. A Client is safe for concurrent use; Close it when done.
type Client struct {
	addr  string
	base  string // "http://HOST:PORT", or "http://localhost" over a unix socket
	bind  string // the listener as the token challenge names it: "tcp:PORT" or "unix"
	token string
	http  *http.Client
	nonce string // makes every request id of this client unique to it
	seq   atomic.Uint64

	proveMu sync.Mutex
	proven  bool // the endpoint proved it holds the token (challenge.go): send it
}

// NewClient returns a client of the endpoint at addr ("HOST:PORT" or
// "unix:/path.sock"); timeout bounds each request (0: 5 s).
//
// token, when set, is sent as "Authorization: Bearer", but only to an
// endpoint that has proved it holds the same token: before its first
// request the client sends a fresh nonce without the token (GET /challenge)
// and checks the answer (challenge.go). An endpoint that fails the proof,
// or says it has no token, gets no request at all (*NotFlatstoreError).
func NewClient(addr, token string, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 2, IdleConnTimeout: 2 * time.Second}
	base, bind := "http://"+addr, "unix"
	if path, ok := flatstore.ParseListen(addr).Unix(); ok {
		if path == "" {
			return nil, errors.New("no socket path after the unix: prefix")
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		base = "http://localhost" // a Host the endpoint's DNS-rebinding check accepts
	} else if _, port, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("want HOST:PORT or unix:/path.sock: %v", err)
	} else {
		n, err := net.LookupPort("tcp", port)
		if err != nil {
			return nil, fmt.Errorf("want HOST:PORT or unix:/path.sock: %v", err)
		}
		bind = tcpBind(n)
	}
	var n [6]byte
	_, _ = rand.Read(n[:])
	return &Client{
		addr: addr, base: base, bind: bind, token: token,
		http:  &http.Client{Transport: tr, Timeout: timeout},
		nonce: hex.EncodeToString(n[:]),
	}, nil
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Addr returns the endpoint address the client was made for.
func (c *Client) Addr() string { return c.addr }

// RPCError is a JSON-RPC error reply. Code 400 ("File not found") is what
// the endpoint answers for a path it does not manage; errors.Is(err,
// flatstore.ErrNotManaged) reports it.
type RPCError struct {
	Code    int
	Message string
	Data    string
}

func (e *RPCError) Error() string {
	msg := e.Message
	if e.Data != "" {
		msg += ": " + e.Data
	}
	if e.Code == codeNotFound { // event_flatstore's plain "File not found"
		return msg
	}
	return msg + " (code " + strconv.Itoa(e.Code) + ")"
}

// Is makes errors.Is(err, flatstore.ErrNotManaged) true for "File not found".
func (e *RPCError) Is(target error) bool {
	return target == flatstore.ErrNotManaged && e.Code == codeNotFound
}

// NotFlatstoreError says that whatever answers at the address is not a
// flatstore control endpoint (another program holds the port), so no reply
// of it can be trusted.
type NotFlatstoreError struct {
	Addr   string
	Reason string
}

func (e *NotFlatstoreError) Error() string {
	return fmt.Sprintf("%s is not a flatstore control endpoint (%s); another program may hold the address: "+
		"point -addr or FLATSTORE_ADDR at the plugin's control_listen", e.Addr, e.Reason)
}

// Call sends one JSON-RPC request and returns its raw result. An error reply
// is an *RPCError; a reply that is not JSON-RPC 2.0, or whose id is not the
// one sent, is a *NotFlatstoreError.
func (c *Client) Call(method string, params any) (json.RawMessage, error) {
	id := "flatstore-" + c.nonce + "-" + strconv.FormatUint(c.seq.Add(1), 10)
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": id}
	if params != nil {
		req["params"] = params
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	status, data, err := c.Do(http.MethodPost, "/mi", body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d %s: %s", status, http.StatusText(status), truncate(strings.TrimSpace(string(data)), 200))
	}
	var rep struct {
		JSONRPC string          `json:"jsonrpc"`
		Result  json.RawMessage `json:"result"`
		Error   *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &rep); err != nil || rep.JSONRPC != "2.0" || (rep.Result == nil) == (rep.Error == nil) {
		return nil, &NotFlatstoreError{c.addr, fmt.Sprintf("its reply to %s is not JSON-RPC 2.0: %q", method, truncate(string(data), 200))}
	}
	var gotID string
	// An error about a request the server could not read carries id null.
	unread := rep.Error != nil && string(rep.ID) == "null" &&
		(rep.Error.Code == codeParseError || rep.Error.Code == codeInvalidRequest)
	if !unread && (json.Unmarshal(rep.ID, &gotID) != nil || gotID != id) {
		return nil, &NotFlatstoreError{c.addr, fmt.Sprintf("its reply to %s carries the id %s, not the %q sent", method, rep.ID, id)}
	}
	if rep.Error != nil {
		e := &RPCError{Code: rep.Error.Code, Message: rep.Error.Message}
		_ = json.Unmarshal(rep.Error.Data, &e.Data)
		return nil, e
	}
	return rep.Result, nil
}

// Status returns the files the endpoint manages (MI event_flatstore:status).
// A reply that is not flatstore's is a *NotFlatstoreError.
func (c *Client) Status() ([]filestore.Status, error) {
	res, err := c.Call(statusMethod, nil)
	var re *RPCError
	if errors.As(err, &re) && re.Code == codeMethodNotFound {
		return nil, &NotFlatstoreError{c.addr, "it answers MI but has no " + statusMethod + " (an OpenSIPS?)"}
	}
	if err != nil {
		return nil, err
	}
	var st struct {
		Files *[]filestore.Status `json:"files"`
	}
	if err := json.Unmarshal(res, &st); err != nil || st.Files == nil {
		return nil, &NotFlatstoreError{c.addr, fmt.Sprintf("its %s result is not a list of files: %s", statusMethod, truncate(string(res), 200))}
	}
	return *st.Files, nil
}

// Rotate asks the endpoint to reopen path (MI event_flatstore:rotate) and
// returns nil only when that is sure to have happened:
//
//   - with a token, the endpoint must first prove that it holds it (see
//     NewClient); nothing is sent to one that does not;
//   - first the endpoint must prove to be flatstore's: it answers
//     event_flatstore:status, in JSON-RPC 2.0, with the id sent;
//   - then the rotate must answer "OK" with its own id;
//   - and the path must be among the files that status lists (or, spelled
//     another way, name one of them), so that the OK comes from the plugin
//     that writes this very file and not from another one that happens to
//     hold the address.
//
// A path the endpoint does not manage is an *RPCError for which
// errors.Is(err, flatstore.ErrNotManaged) holds; an endpoint that is not
// flatstore's is a *NotFlatstoreError, never "not managed".
func (c *Client) Rotate(path string) error {
	files, err := c.Status()
	if err != nil {
		return err
	}
	res, err := c.Call("event_flatstore:rotate", map[string]string{rotateParam: path})
	if err != nil {
		return err
	}
	if string(bytes.TrimSpace(res)) != `"OK"` {
		return &NotFlatstoreError{c.addr, fmt.Sprintf("it answers the rotate with %s, not \"OK\"", truncate(string(res), 200))}
	}
	if listed(files, path) {
		return nil
	}
	// A file rendered from a template may have opened since; ask again.
	if files, err = c.Status(); err != nil {
		return err
	}
	if !listed(files, path) {
		return fmt.Errorf("%s answered OK but does not list %s among its files (%s): it is not the plugin writing this file",
			c.addr, path, FileList(files, 5))
	}
	return nil
}

// listed reports whether path, or its clean form, is one of files.
func listed(files []filestore.Status, path string) bool {
	clean := path
	if filepath.IsAbs(path) {
		clean = filepath.Clean(path)
	}
	for _, f := range files {
		if f.Path == path || f.Path == clean {
			return true
		}
	}
	return false
}

// FileList names up to max of files for a message: "/a.log, /b.log and 3 more",
// or "none".
func FileList(files []filestore.Status, max int) string {
	if len(files) == 0 {
		return "none"
	}
	var names []string
	for i, f := range files {
		if i == max {
			return strings.Join(names, ", ") + fmt.Sprintf(" and %d more", len(files)-max)
		}
		names = append(names, f.Path)
	}
	return strings.Join(names, ", ")
}

// Do sends one plain HTTP request (method, path with its query, body or
// nil) and returns the status and the body (at most 16 MiB). Use it for
// POST /rotate?path=, GET /status, /metrics, /healthz. The client's token
// goes with it once the endpoint has proved it holds the token (prove).
func (c *Client) Do(method, path string, body []byte) (int, []byte, error) {
	auth := false
	if c.token != "" {
		var err error
		if auth, err = c.prove(); err != nil {
			return 0, nil, err
		}
	}
	return c.send(method, path, body, auth)
}

// prove runs the token challenge once per client (challenge.go) and reports
// whether the token may be sent. It fails, and the token is never sent,
// when the endpoint answers without proving that it holds the token.
func (c *Client) prove() (bool, error) {
	c.proveMu.Lock()
	defer c.proveMu.Unlock()
	if c.proven {
		return true, nil
	}
	var n [32]byte
	if _, err := rand.Read(n[:]); err != nil {
		return false, err
	}
	nonce := hex.EncodeToString(n[:])
	status, data, err := c.send(http.MethodGet, challengePath+"?nonce="+nonce, nil, false)
	if err != nil {
		return false, err
	}
	const notSent = "; the control_token was not sent"
	if status != http.StatusOK {
		return false, &NotFlatstoreError{c.addr, fmt.Sprintf("it does not answer flatstore's token challenge (HTTP %d %s to GET %s)%s",
			status, http.StatusText(status), challengePath, notSent)}
	}
	var rep challengeReply
	if err := json.Unmarshal(data, &rep); err != nil {
		return false, &NotFlatstoreError{c.addr, fmt.Sprintf("its answer to the token challenge is not flatstore's: %q%s",
			truncate(string(data), 200), notSent)}
	}
	if !rep.Token {
		// The plugin whose token we hold has that token; an endpoint without
		// one is another (or a squatter claiming so to be trusted without a
		// proof). It gets nothing.
		return false, &NotFlatstoreError{c.addr, "it has no control_token, but a token was given: it is not the plugin " +
			"whose token you hold (if the plugin really has no control_token, give none)" + notSent}
	}
	want := proof(c.token, nonce, c.bind)
	if !hmac.Equal([]byte(rep.Proof), []byte(want)) {
		why := "it does not hold this control_token: the token differs from the plugin's control_token, or the address is held by another program"
		if rep.Bind != c.bind && hmac.Equal([]byte(rep.Proof), []byte(proof(c.token, nonce, rep.Bind))) {
			why = fmt.Sprintf("it holds this control_token but answers for %s, not %s as dialed: a relay to the plugin's endpoint, "+
				"or a port mapped to another number (dial the plugin's own port, or use its unix socket)", rep.Bind, c.bind)
		}
		return false, &NotFlatstoreError{c.addr, why + notSent}
	}
	c.proven = true
	return true, nil
}

// send sends one request, with the token when auth is set.
func (c *Client) send(method, path string, body []byte, auth bool) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, data, fmt.Errorf("reading the reply: %w", err)
	}
	return resp.StatusCode, data, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
