package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flatstore/flatstore/flatstore"
)

// A socket path of the longest length sun_path takes, in a long directory
// with a short name, binds although the temporary name beside it
// (DIR/.fsNNNNNNNNN/s) is longer; one byte more is refused with a clear
// message.
func TestUnixSocketMaxLength(t *testing.T) {
	t.Parallel()
	const name = "c.sock"
	base := t.TempDir()
	if len(base) > flatstore.MaxUnixPath-len(name)-3 {
		t.Skipf("the temporary directory %s is too long for this test", base)
	}
	dir := filepath.Join(base, strings.Repeat("d", flatstore.MaxUnixPath-len(name)-len(base)-2))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, name)
	if len(sock) != flatstore.MaxUnixPath {
		t.Fatalf("built a path of %d bytes", len(sock))
	}
	p := tempPaths(t, "e.log")[0]
	b := newFileBackend(t, p)
	reg := testRegistry()
	h, err := reg.Acquire(flatstore.ParseListen("unix:"+sock), b, Options{})
	if err != nil {
		t.Fatalf("a %d-byte socket path: %v", len(sock), err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v, want a socket with mode 0600", fi, err)
	}
	if r := mi(t, h, `{"jsonrpc":"2.0","method":"rotate","params":[`+q(p)+`],"id":1}`); r.body != `{"jsonrpc":"2.0","result":"OK","id":1}` {
		t.Fatalf("over the %d-byte socket: %s", len(sock), r.body)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("the directory holds %d entries, want only the socket", len(ents))
	}
	h.Release()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after Release: %v", err)
	}

	long := sock + "x"
	_, err = reg.Acquire(flatstore.ParseListen("unix:"+long), b, Options{})
	want := "the socket path is 108 bytes long; a unix socket path has at most 107: choose a shorter one"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `control_listen "unix:`+long+`"`) {
		t.Fatalf("a 108-byte path: %v\nwant %s", err, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the directory holds %d entries after the refusal", len(ents))
	}
}

// The short name through /proc binds in the very directory it stands for.
func TestBindUnixThroughProc(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, strings.Repeat("d", flatstore.MaxUnixPath))
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(sub, "s")
	ln, err := bindUnix(sub, tmp)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(tmp)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s: %v %v, want the socket there", tmp, fi, err)
	}
	ln.Close()
	if _, err := os.Lstat(tmp); err != nil {
		t.Fatalf("closing the listener removed the socket: %v", err)
	}
}
