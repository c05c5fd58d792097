package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/flatstore/flatstore/internal/fbtest"
)

// TestMain removes the harness build directory (plugin .so and host) when the
// end-to-end tests end. One TestMain serves every test file of this package.
//
// Run as "e2e.test -flatstore-hold ADDR PROGRAM ARGS..." (inside a network
// namespace of its own, see TestLifecycleDefaultAddressTaken) it instead
// brings loopback up, listens on ADDR and executes PROGRAM with the
// listening socket still open, so that PROGRAM finds ADDR taken.
func TestMain(m *testing.M) {
	if len(os.Args) > 3 && os.Args[1] == holdFlag {
		holdThenExec(os.Args[2], os.Args[3:])
	}
	fbtest.Main(m)
}

const holdFlag = "-flatstore-hold"

func holdThenExec(addr string, argv []string) {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "ip link set lo up: %v %s\n", err, out)
		os.Exit(70)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(70)
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(70)
	}
	// Keep the socket open across exec.
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETFD, 0); e != 0 {
		fmt.Fprintln(os.Stderr, e)
		os.Exit(70)
	}
	err = syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintln(os.Stderr, err)
	os.Exit(70)
}
