package control

import (
	"net"
	"net/netip"
	"strings"
)

// localHost reports whether a request's Host value (r.Host: the Host header,
// or the host of an absolute request target) names this machine: a loopback
// IP literal (127.0.0.0/8, ::1, bracketed, with or without a port),
// "localhost", or the host of the configured address. An absent Host (an
// HTTP/1.0 client) is accepted: DNS rebinding needs a browser, and browsers
// always send one.
func (s *server) localHost(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	if strings.EqualFold(host, "localhost") || (s.listenHost != "" && strings.EqualFold(host, s.listenHost)) {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// listenHostNote names the configured host in the 421 message when it is
// not one of the values the message lists already.
func (s *server) listenHostNote() string {
	h := s.listenHost
	if h == "" || strings.EqualFold(h, "localhost") {
		return ""
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Unmap().IsLoopback() {
		return ""
	}
	return " or " + h
}
