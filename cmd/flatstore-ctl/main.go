// Command flatstore-ctl talks to the flatstore control endpoint.
//
//	flatstore-ctl [-addr A] [-token T] [-timeout 5s] [-missingok] rotate PATH...
//	flatstore-ctl [-addr A] [-token T] [-timeout 5s] status
//
// rotate asks the plugin to reopen each PATH (OpenSIPS MI
// event_flatstore:rotate over POST /mi), in order; it prints nothing on
// success and stops at the first failure with the server's message, e.g.
// "flatstore-ctl: /x: File not found". A PATH must be spelled exactly as the
// plugin manages it (absolute, no "//"). With -missingok, "File not found" is
// not a failure: a file rendered from a path template that the plugin has
// closed (idle) has nothing to reopen. status prints the managed files as
// JSON.
//
// -addr is HOST:PORT or unix:/path.sock (default $FLATSTORE_ADDR, else
// 127.0.0.1:2021); -token defaults to $FLATSTORE_TOKEN.
//
// Exit status: 0 on success, 1 when a request fails, 2 on a usage error.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const defaultAddr = "127.0.0.1:2021"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: flatstore-ctl [flags] rotate PATH...
       flatstore-ctl [flags] status

rotate  make the plugin reopen each PATH (after logrotate moved it);
        PATH is spelled exactly as the plugin's path setting
status  print the files the plugin manages, as JSON

flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("flatstore-ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", envOr("FLATSTORE_ADDR", defaultAddr), "control endpoint: HOST:PORT or unix:/path.sock (env FLATSTORE_ADDR)")
	token := fs.String("token", os.Getenv("FLATSTORE_TOKEN"), "control_token, sent as Authorization: Bearer (env FLATSTORE_TOKEN)")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit for each request")
	missingOK := fs.Bool("missingok", false, "rotate: a PATH the plugin does not manage now is not an error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return 0
		}
		fmt.Fprintf(stderr, "flatstore-ctl: %v\n", err)
		usage(stderr, fs)
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "flatstore-ctl: no command")
		usage(stderr, fs)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "flatstore-ctl: -timeout must be positive")
		return 2
	}
	c, err := newClient(*addr, *token, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: -addr %q: %v\n", *addr, err)
		return 2
	}
	switch rest[0] {
	case "rotate":
		if len(rest) == 1 {
			fmt.Fprintln(stderr, "flatstore-ctl: rotate needs at least one PATH")
			usage(stderr, fs)
			return 2
		}
		for _, p := range rest[1:] {
			if _, err := c.call("event_flatstore:rotate", map[string]string{"path_to_file": p}); err != nil {
				var re *rpcError
				if *missingOK && errors.As(err, &re) && re.code == codeNotFound {
					continue
				}
				msg := err.Error()
				if !filepath.IsAbs(p) {
					msg += " (the path must be absolute, spelled as in the plugin's path setting)"
				}
				fmt.Fprintf(stderr, "flatstore-ctl: %s: %s\n", p, msg)
				return 1
			}
		}
		return 0
	case "status":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "flatstore-ctl: status takes no arguments")
			return 2
		}
		res, err := c.call("event_flatstore:status", nil)
		if err != nil {
			fmt.Fprintf(stderr, "flatstore-ctl: status: %v\n", err)
			return 1
		}
		var out bytes.Buffer
		if err := json.Indent(&out, res, "", "  "); err != nil {
			out.Reset()
			out.Write(res)
		}
		out.WriteByte('\n')
		_, _ = stdout.Write(out.Bytes())
		return 0
	default:
		fmt.Fprintf(stderr, "flatstore-ctl: unknown command %q\n", rest[0])
		usage(stderr, fs)
		return 2
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

type client struct {
	http  *http.Client
	url   string
	token string
	id    int
}

func newClient(addr, token string, timeout time.Duration) (*client, error) {
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	url := "http://" + addr + "/mi"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, errors.New("no socket path after unix:")
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		url = "http://localhost/mi" // a Host the endpoint accepts
	} else if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("want HOST:PORT or unix:/path.sock: %v", err)
	}
	return &client{http: &http.Client{Transport: tr, Timeout: timeout}, url: url, token: token}, nil
}

// call sends one JSON-RPC request and returns its raw result, or an error
// that carries the server's message.
func (c *client) call(method string, params any) (json.RawMessage, error) {
	c.id++
	req := map[string]any{"jsonrpc": "2.0", "method": method, "id": c.id}
	if params != nil {
		req["params"] = params
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var rep struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("not a JSON-RPC reply: %q", truncate(string(data), 200))
	}
	if rep.Error != nil {
		e := &rpcError{code: rep.Error.Code, msg: rep.Error.Message}
		var data string
		if json.Unmarshal(rep.Error.Data, &data) == nil && data != "" {
			e.msg += ": " + data
		}
		return nil, e
	}
	if rep.Result == nil {
		return nil, fmt.Errorf("reply without result: %q", truncate(string(data), 200))
	}
	return rep.Result, nil
}

// codeNotFound is event_flatstore's error code for a path it does not manage.
const codeNotFound = 400

// rpcError is a JSON-RPC error reply.
type rpcError struct {
	code int
	msg  string
}

func (e *rpcError) Error() string {
	if e.code == codeNotFound { // event_flatstore's plain "File not found"
		return e.msg
	}
	return e.msg + " (code " + strconv.Itoa(e.code) + ")"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
