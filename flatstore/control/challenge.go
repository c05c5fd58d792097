package control

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
)

// The token challenge: the endpoint proves that it holds the control_token
// before a client sends it.
//
// Whatever holds the address a client dials receives what the client sends.
// A program that took the port first (the plugin then runs without an
// endpoint, or listens elsewhere) could otherwise answer like flatstore,
// echo the request ids, and collect the bearer token of the first rotate.
// So a client with a token first sends, without the token,
//
//	GET /challenge?nonce=N        N: 32 to 128 hex digits, fresh each time
//
// and the endpoint answers {"token":true,"bind":B,"proof":P} with
//
//	P = hex(HMAC-SHA256(control_token, "flatstore-control-proof-v1\x00" + N + "\x00" + B))
//
// Only a holder of the token can compute P, and N is new, so an old answer
// cannot be replayed. B names the listener the endpoint was reached on:
// "tcp:PORT" (its local port) or "unix". The client computes P over the B
// of the address it dialed (the port it dialed, or "unix") and sends the
// token only when the proofs are equal. Binding the port defeats a squatter
// that relays the challenge to the real endpoint on another port of the same
// host. Only the port is bound, not the IP, so a port published through NAT
// (docker -p 2021:2021) keeps working; a relay through the same port number
// on another IP, like any man in the middle of plain HTTP, is out of reach
// of a proof: use the unix socket (created 0600) to rule it out. Over a unix
// socket the same exchange runs, bound to "unix"; only a process of the
// plugin's user can hold that socket anyway.
//
// An endpoint without a token answers {"token":false}: it proves nothing,
// and a client that holds a token sends it nothing (the plugin it means has
// that token). An endpoint that does not answer the challenge (not
// flatstore, or a flatstore from before it) never receives the token. A
// client without a token skips the challenge: it has nothing to give away,
// and Client.Rotate's checks (status lists the path, ids echoed) apply.
const challengePath = "/challenge"

// proofContext separates this HMAC from any other use of the token.
const proofContext = "flatstore-control-proof-v1"

// proof is the endpoint's answer to nonce on listener bind.
func proof(token, nonce, bind string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(proofContext + "\x00" + nonce + "\x00" + bind))
	return hex.EncodeToString(m.Sum(nil))
}

// validNonce: 32 to 128 lower-case hex digits.
func validNonce(n string) bool {
	if len(n) < 32 || len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// challengeReply is the JSON of GET /challenge.
type challengeReply struct {
	Token bool   `json:"token"`
	Bind  string `json:"bind,omitempty"`
	Proof string `json:"proof,omitempty"`
}

// tcpBind is the bind of a TCP listener's port.
func tcpBind(port int) string { return "tcp:" + strconv.Itoa(port) }

// serveChallenge is GET /challenge?nonce=N.
func (s *server) serveChallenge(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()["nonce"]
	if len(q) != 1 || !validNonce(q[0]) {
		http.Error(w, "Bad Request: give one ?nonce= of 32 to 128 lower-case hex digits", http.StatusBadRequest)
		return
	}
	rep := challengeReply{}
	if s.token != "" {
		rep.Token = true
		rep.Bind = "unix"
		if s.unixPath == "" {
			c := connOf(r)
			if c == nil {
				http.Error(w, "Internal Server Error: no connection", http.StatusInternalServerError)
				return
			}
			ta, ok := c.LocalAddr().(*net.TCPAddr)
			if !ok {
				http.Error(w, "Internal Server Error: not a TCP connection", http.StatusInternalServerError)
				return
			}
			rep.Bind = tcpBind(ta.Port)
		}
		rep.Proof = proof(s.token, q[0], rep.Bind)
	}
	b, _ := json.Marshal(rep)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}
