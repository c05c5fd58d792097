package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flatstore/flatstore/flatstore"
	"github.com/flatstore/flatstore/flatstore/filestore"
	"github.com/flatstore/flatstore/flatstore/logger"
)

// routes is the whole HTTP surface. The method patterns make ServeMux answer
// a wrong method with 405 and an Allow header; mutations are POST only.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	// mi_http serves its whole root: /mi and everything under /mi/.
	mux.HandleFunc("POST /mi", s.serveMI)
	mux.HandleFunc("POST /mi/", s.serveMI)
	mux.HandleFunc("POST /rotate", s.servePlainRotate)
	mux.HandleFunc("GET /status", s.serveStatus)
	if s.metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{
			ErrorLog: logWriterLogger{s},
		}))
	}
	mux.HandleFunc("GET "+challengePath, s.serveChallenge)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return s.guard(mux)
}

// guard checks the Host and the token before anything else happens,
// refuses browsers, then reads the whole body (bounded in size, and in time
// by the server's ReadTimeout on the whole request) before the route runs,
// and takes the request's slot (server.go: "How the connection slots are
// shared"). Every refusal closes the connection at once (refuse).
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := connOf(r)
		if s.checkHost && !s.localHost(r.Host) {
			// A web page whose name the attacker re-points at 127.0.0.1 (DNS
			// rebinding) reaches this listener with its own name as Host.
			s.refuse(w, c, http.StatusMisdirectedRequest, fmt.Sprintf("Misdirected Request: Host %q is not served here; this endpoint listens on "+
				"loopback and answers only Host values that name this machine (a loopback IP such as 127.0.0.1 or [::1], "+
				"localhost%s), against DNS rebinding",
				r.Host, s.listenHostNote()))
			return
		}
		authed := s.token != "" && s.authorized(r)
		if s.token != "" && !authed && !(openPath(r.URL.Path) && r.Header.Get("Authorization") == "") {
			s.logger().LimitedWarnf("control-unauthorized", "control endpoint %s: refused %s %q from %s: no valid control_token "+
				"(401; the connection is closed)", s.bound, r.Method, truncate(r.URL.Path, 100), s.peer(r))
			w.Header().Set("WWW-Authenticate", `Bearer realm="flatstore"`)
			s.refuse(w, c, http.StatusUnauthorized, "Unauthorized: send Authorization: Bearer <control_token>")
			return
		}
		if r.Header.Get("Origin") != "" {
			// Browsers send Origin with every POST; no client of this endpoint is
			// a browser. Refusing them keeps a web page from rotating files
			// (cross-site form POST) or reading /status after a DNS rebind.
			s.refuse(w, c, http.StatusForbidden, "Forbidden: requests from web pages are not accepted")
			return
		}
		trusted := authed || (s.token == "" && s.localPeer(r))
		if c != nil && !s.reading(c, trusted) {
			s.refuse(w, c, http.StatusServiceUnavailable, "Service Unavailable: the connection was closed to make room")
			return
		}
		if r.ContentLength > maxBodyBytes {
			s.refuse(w, c, http.StatusRequestEntityTooLarge, tooLargeMsg)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			var ne net.Error
			switch {
			case errors.As(err, &mbe):
				s.refuse(w, c, http.StatusRequestEntityTooLarge, tooLargeMsg)
			case errors.As(err, &ne) && ne.Timeout():
				s.refuse(w, c, http.StatusRequestTimeout, fmt.Sprintf("Request Timeout: the whole request must arrive within %v", s.lim.readTimeout))
			default:
				s.refuse(w, c, http.StatusBadRequest, "Bad Request: "+err.Error())
			}
			return
		}
		if c != nil && !s.serving(c, trusted) {
			s.logger().LimitedWarnf("control-conns-reserved", "control endpoint %s: %d requests without the control_token in flight, "+
				"the most it serves (%d connections are kept for rotates with the token); refused one (503)",
				s.bound, s.lim.maxConns-reservedConns(s.lim.maxConns), reservedConns(s.lim.maxConns))
			s.refuse(w, c, http.StatusServiceUnavailable, "Service Unavailable: too many requests in flight; try again")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// openPath reports whether path is served without the token: the liveness
// check, and the challenge through which the endpoint proves it holds the
// token before a client sends it (challenge.go). A request that does carry
// an Authorization header is checked even there: a wrong token is 401
// everywhere, so a health check with a stale token fails loudly.
func openPath(path string) bool { return path == "/healthz" || path == challengePath }

// refuse answers with code and msg and closes the connection right after,
// without reading what remains of the body. "Connection: close" keeps
// net/http from draining the body before it writes the reply; but once the
// reply is out it still closes the body, which reads up to 256 KiB looking
// for its end, until the request's deadline. A read deadline in the past
// ends that read at once, so the connection is closed as soon as the reply
// is written.
func (s *server) refuse(w http.ResponseWriter, c net.Conn, code int, msg string) {
	if c != nil {
		s.refused(c)
	}
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// peer names the client of r for the log: its address, or "unix" on a unix
// socket (whose peers have no name).
func (s *server) peer(r *http.Request) string {
	if s.unixPath != "" {
		return "unix"
	}
	return r.RemoteAddr
}

// localPeer reports whether r came over the unix socket or from a loopback
// address.
func (s *server) localPeer(r *http.Request) bool {
	if s.unixPath != "" {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func (s *server) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return false
	}
	return sameToken(strings.TrimSpace(v[len(scheme):]), s.token)
}

const tooLargeMsg = "Request Entity Too Large: the body limit is 64 KiB"

// readBody returns the body, which guard has read already.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

// servePlainRotate is POST /rotate?path=/var/log/events.log.
func (s *server) servePlainRotate(w http.ResponseWriter, r *http.Request) {
	if _, ok := readBody(w, r); !ok {
		return
	}
	paths, present := r.URL.Query()["path"]
	if !present || len(paths) != 1 {
		http.Error(w, "Bad Request: give exactly one ?path=", http.StatusBadRequest)
		return
	}
	err := s.rotate(paths[0], "http", s.peer(r))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case err == nil:
		_, _ = io.WriteString(w, "OK\n")
	case errors.Is(err, flatstore.ErrNotManaged):
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "File not found\n")
	default:
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, err.Error()+"\n")
	}
}

// serveStatus is GET /status: {"files":[...]}.
func (s *server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	b := s.statusJSON()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// rotate asks every attached backend to rotate path. It succeeds if any of
// them manages the path (a path shared by two instances is one shared file);
// it returns ErrNotManaged when none does, and otherwise the first real
// error.
//
// Every request is logged with its result, rate-limited per key so that a
// client calling in a loop cannot flood the log: a success per path (the
// managed paths are a bounded set), "File not found" under one key whatever
// the path (any client can send any number of paths), a failure per path.
// A failure is a warning.
func (s *server) rotate(path, via, from string) error {
	var ok bool
	var firstErr error
	for _, h := range s.handlesSnapshot() {
		err := h.b.Rotate(path)
		switch {
		case err == nil:
			ok = true
		case errors.Is(err, flatstore.ErrNotManaged):
		default:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	lg := s.logger()
	switch {
	case ok:
		lg.Limitedf(logger.LevelInfo, "control-rotate-ok:"+path, "control: rotate %q (%s from %s): OK", path, via, from)
		return nil
	case firstErr != nil:
		lg.LimitedWarnf("control-rotate-failed:"+path, "control: rotate %q (%s from %s): %v", path, via, from, firstErr)
		return firstErr
	default:
		lg.LimitedWarnf("control-rotate-not-found", "control: rotate %q (%s from %s): File not found", path, via, from)
		return flatstore.ErrNotManaged
	}
}

// statusJSON is {"files":[...]} over every attached backend; a path that two
// instances share is listed once.
func (s *server) statusJSON() []byte {
	files := []filestore.Status{}
	seen := map[string]bool{}
	for _, h := range s.handlesSnapshot() {
		for _, f := range h.b.Status() {
			if !seen[f.Path] {
				seen[f.Path] = true
				files = append(files, f)
			}
		}
	}
	// encoding/json, not jsoniter: FileStatus uses the omitzero tag option.
	b, err := json.Marshal(struct {
		Files []filestore.Status `json:"files"`
	}{files})
	if err != nil { // cannot happen with these types
		return []byte(`{"files":[]}`)
	}
	return b
}

// logWriterLogger adapts the instance logger to promhttp's Logger.
type logWriterLogger struct{ s *server }

func (l logWriterLogger) Println(v ...any) {
	l.s.logger().Warnf("control endpoint %s: metrics: %s", l.s.bound, strings.TrimRight(fmt.Sprintln(v...), "\n"))
}
