// Command flatstore-ctl talks to the flatstore control endpoint.
//
//	flatstore-ctl rotate [-addr A] [-token T] [-timeout 5s] [-missingok] PATH...
//	flatstore-ctl status [-addr A] [-token T] [-timeout 5s]
//	flatstore-ctl read [-config FILE -output NAME] [-delimiter D] [-escape E]
//	                   [-params a,b,c] [-suppress_event_name] [-time_format F] FILE...
//
// Flags may come before or after the command and its arguments ("--" ends
// them); flatstore-ctl COMMAND -h describes one command without touching
// the network.
//
// rotate asks the plugin to reopen each PATH (OpenSIPS MI
// event_flatstore:rotate over POST /mi), in order; it prints nothing on
// success and stops at the first failure with the server's message, e.g.
// "flatstore-ctl: /x: File not found". A PATH is spelled as in the plugin's
// path setting: absolute, no "//", with or without its "flatstore:" prefix.
// With -missingok, "File not found" is not a failure: a file rendered from a
// path template that the plugin has closed (idle) has nothing to reopen.
//
// rotate trusts an "OK" only from the plugin that writes PATH: the endpoint
// must first answer event_flatstore:status as flatstore does, echo the
// request ids, and list PATH among its files. Anything else holding the
// address (another program answering "OK", an OpenSIPS) is an error, which
// -missingok does not hide.
//
// With a token (-token or $FLATSTORE_TOKEN), flatstore-ctl first makes the
// endpoint prove that it holds the same control_token (GET /challenge: a
// fresh nonce, answered with an HMAC keyed by the token and bound to the
// port dialed) and sends the token only then; an endpoint that cannot prove
// it, or says it has no token, receives nothing more and the command fails
// ("... is not a flatstore control endpoint (...); the control_token was
// not sent").
//
// status prints the managed files as JSON.
//
// read prints the events of flatstore files (plain, gzip or zstd; - is
// standard input) as JSON objects, one a line, every value a string; it
// reads escape backslash and csv back exactly, with the plugin's own
// settings from flags or from the Fluent Bit configuration (see read.go,
// or flatstore-ctl read -h). It exits 1 when a line could not be read back.
//
// -addr is HOST:PORT or unix:/path.sock (default $FLATSTORE_ADDR, else
// 127.0.0.1:2021); -token defaults to $FLATSTORE_TOKEN.
//
// Exit status: 0 on success, 1 when a request fails, 2 on a usage error.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/control"
	"github.com/flatstore/flatstore/flatstore/filestore"
)

const defaultAddr = "127.0.0.1:2021"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// commandHelp is each endpoint command's usage line and what it does.
var commandHelp = map[string]string{
	"rotate": `usage: flatstore-ctl rotate [flags] PATH...

Make the plugin reopen each PATH (after logrotate moved it), in order;
silent on success, stops at the first failure. PATH is spelled as in the
plugin's path setting (absolute; a flatstore: prefix is allowed).
`,
	"status": `usage: flatstore-ctl status [flags]

Print the files the plugin manages, as JSON.
`,
}

func usage(w io.Writer, cmd string, fs *flag.FlagSet) {
	if h, ok := commandHelp[cmd]; ok {
		fmt.Fprint(w, h)
	} else {
		fmt.Fprint(w, `usage: flatstore-ctl rotate [flags] PATH...
       flatstore-ctl status [flags]
       flatstore-ctl read [read flags] FILE...
       flatstore-ctl check -config FILE [-output NAME] [-user USER]

rotate  make the plugin reopen each PATH (after logrotate moved it);
        PATH is spelled as in the plugin's path setting (absolute; a
        flatstore: prefix is allowed)
status  print the files the plugin manages, as JSON
read    print the events of flatstore files (plain, .gz, .zst; - is stdin)
        as JSON lines, with the plugin's settings from flags or from its
        Fluent Bit config (flatstore-ctl read -h for its flags)
check   check a Fluent Bit configuration's flatstore outputs as Init would,
        every problem at once: values, directories, access (-user), the
        socket directory (flatstore-ctl check -h)

Flags may come before or after the command and its arguments;
flatstore-ctl COMMAND -h describes one command.
`)
	}
	fmt.Fprint(w, "\nflags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, rest := commandOf(args, map[string]bool{"addr": true, "token": true, "timeout": true})
	switch cmd { // files, not the endpoint
	case "read":
		return runRead(rest, stdin, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	}
	fs := flag.NewFlagSet("flatstore-ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", envOr("FLATSTORE_ADDR", defaultAddr), "control endpoint: HOST:PORT or unix:/path.sock (env FLATSTORE_ADDR)")
	token := fs.String("token", os.Getenv("FLATSTORE_TOKEN"), "control_token, sent as Authorization: Bearer once the endpoint proves it holds it (env FLATSTORE_TOKEN)")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit for each request")
	missingOK := fs.Bool("missingok", false, "rotate: a PATH the plugin does not manage now is not an error")
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, cmd, fs) // nothing is sent anywhere
			return 0
		}
		fmt.Fprintf(stderr, "flatstore-ctl: %v\n", err)
		usage(stderr, cmd, fs)
		return 2
	}
	switch cmd {
	case "":
		fmt.Fprintln(stderr, "flatstore-ctl: no command")
		usage(stderr, cmd, fs)
		return 2
	case "rotate":
		if len(pos) == 0 {
			fmt.Fprintln(stderr, "flatstore-ctl: rotate needs at least one PATH")
			usage(stderr, cmd, fs)
			return 2
		}
	case "status":
		if len(pos) != 0 {
			fmt.Fprintf(stderr, "flatstore-ctl: status takes no arguments (got %q)\n", pos)
			return 2
		}
	default:
		fmt.Fprintf(stderr, "flatstore-ctl: unknown command %q\n", cmd)
		usage(stderr, "", fs)
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "flatstore-ctl: -timeout must be positive")
		return 2
	}
	c, err := control.NewClient(*addr, *token, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: -addr %q: %v\n", *addr, err)
		return 2
	}
	defer c.Close()
	if cmd == "rotate" {
		for _, arg := range pos {
			if !rotate(c, arg, *missingOK, *timeout, stderr) {
				return 1
			}
		}
		return 0
	}
	files, err := c.Status()
	if err != nil {
		fmt.Fprintf(stderr, "flatstore-ctl: status: %s\n", explain(c.Addr(), *timeout, err))
		return 1
	}
	out, _ := json.MarshalIndent(struct {
		Files []filestore.Status `json:"files"`
	}{append([]filestore.Status{}, files...)}, "", "  ")
	_, _ = stdout.Write(append(out, '\n'))
	return 0
}

// rotate rotates one PATH argument and reports a failure on stderr.
func rotate(c *control.Client, arg string, missingOK bool, timeout time.Duration, stderr io.Writer) bool {
	p := flatstore.TrimPathPrefix(arg)
	err := c.Rotate(p)
	if err == nil || (missingOK && errors.Is(err, flatstore.ErrNotManaged)) {
		return true
	}
	msg := explain(c.Addr(), timeout, err)
	if errors.Is(err, flatstore.ErrNotManaged) {
		if !filepath.IsAbs(p) {
			msg += " (the path must be absolute, spelled as in the plugin's path setting)"
		} else if files, serr := c.Status(); serr == nil {
			msg += " (the endpoint at " + c.Addr() + " manages: " + control.FileList(files, 5) + ")"
		}
	}
	fmt.Fprintf(stderr, "flatstore-ctl: %s: %s\n", arg, msg)
	return false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
