package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Flags may stand anywhere, as in the tools around flatstore-ctl
// (`flatstore-ctl rotate -addr unix:/run/x.sock PATH`, `flatstore-ctl read
// FILE -params a,b`): parseInterleaved takes flags before, between and
// after the positional arguments; "--" ends the flags, and "-" (standard
// input) is an argument.

// parseInterleaved parses args with fs, flags anywhere, and returns the
// positional arguments in order.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commandOf finds the command word: the first argument that is neither a
// flag nor the value of one of the global flags that take a value. It
// returns the word and the arguments without it; "" when there is none.
func commandOf(args []string, valueFlags map[string]bool) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return args[i+1], append(append([]string{}, args[:i]...), args[i+2:]...)
			}
			return "", args
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			return a, append(append([]string{}, args[:i]...), args[i+1:]...)
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && valueFlags[name] {
			i++ // its value
		}
	}
	return "", args
}

// explain turns an error of a request to the endpoint into a sentence a
// person can act on: what was tried, what it means, what to check.
func explain(addr string, timeout time.Duration, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ENOENT) && strings.HasPrefix(addr, "unix:"):
		return fmt.Sprintf("cannot reach the control endpoint at %s: the socket does not exist "+
			"(is Fluent Bit running with the flatstore output's control_listen %s?)", addr, addr)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach the control endpoint at %s: connection refused "+
			"(is Fluent Bit running, with the flatstore output's control_listen %s?)", addr, addr)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("cannot reach the control endpoint at %s: permission denied "+
			"(the socket is 0600: run as the user Fluent Bit runs as)", addr)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("%s did not answer as a flatstore control endpoint within %v "+
			"(another program on that address? see -addr, or raise -timeout)", addr, timeout)
	}
	return err.Error()
}
