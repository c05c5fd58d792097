package e2e

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/flatstore/flatstore/flatstore/control"
)

// ctlClient is the control client of addr, closed when the test ends.
func ctlClient(t testing.TB, addr, token string) *control.Client {
	t.Helper()
	c, err := control.NewClient(addr, token, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// plainRotate sends POST /rotate?path= and returns the status and body.
func plainRotate(c *control.Client, path string) (int, string, error) {
	code, body, err := c.Do(http.MethodPost, "/rotate?path="+url.QueryEscape(path), nil)
	return code, string(body), err
}

// healthy reports whether GET /healthz answers "ok".
func healthy(addr string) bool {
	c, err := control.NewClient(addr, "", time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	code, body, err := c.Do(http.MethodGet, "/healthz", nil)
	return err == nil && code == http.StatusOK && string(body) == "ok\n"
}
