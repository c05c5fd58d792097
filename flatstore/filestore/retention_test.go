package filestore

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flatstore/flatstore/flatstore/logger"
	"github.com/flatstore/flatstore/internal/fbtest"
)

// FuzzManifest: whatever bytes are in a manifest — raw (a local user's
// forgery), or taken as its JSON and signed with the real key (as if
// flatstore itself had written them; @INO@, @DEV@, @SIZE@, @MTIME@ become
// a victim's identity, so that entries can name it exactly) — loading,
// retention and compression never change a file outside the set flatstore
// rotated: the victim outside the directory, a hard link and a symlink to
// it inside, a decoy that only looks rotated.
func FuzzManifest(f *testing.F) {
	for _, seed := range []struct {
		sign bool
		data string
	}{
		{false, ""},
		{false, `{"path":"@PATH@","rotated":[{"name":"../victim","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"../victim","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"@VICTIM@","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"ev.log.hardlink","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"ev.log.symlink","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"ev.log.x","dev":1,"ino":2,"size":0,"mtime":0,"at":0,"reason":"count","pending":true,"zip":{"algo":"gzip","name":"ev.log.x.gz","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@}}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"ev.log.symlink.gz","dev":1,"ino":2,"size":0,"mtime":0,"at":0,"reason":"count","compressed":"gzip","orig":{"dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@}}]}`},
		{true, `{"path":"@PATH@","rotated":[{"name":"ev.log.decoy","dev":@DEV@,"ino":@INO@,"size":@SIZE@,"mtime":@MTIME@,"at":0,"reason":"count"}]}` + "\n{}"},
	} {
		f.Add(seed.sign, []byte(seed.data))
	}
	f.Fuzz(func(t *testing.T, sign bool, data []byte) {
		root := t.TempDir()
		dir, victim := filepath.Join(root, "log"), filepath.Join(root, "victim")
		path := filepath.Join(dir, "ev.log")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{victim, filepath.Join(dir, "ev.log.decoy")} {
			if err := os.WriteFile(v, []byte("keep me\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Link(victim, filepath.Join(dir, "ev.log.hardlink")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, filepath.Join(dir, "ev.log.symlink")); err != nil {
			t.Fatal(err)
		}
		id := identOfFile(t, victim)
		data = []byte(strings.NewReplacer("@PATH@", path, "@VICTIM@", victim, "@DEV@", strconv.FormatUint(id.Dev, 10),
			"@INO@", strconv.FormatUint(id.Ino, 10), "@SIZE@", strconv.FormatInt(id.Size, 10),
			"@MTIME@", strconv.FormatInt(id.Mtime, 10)).Replace(string(data)))
		sd := filepath.Join(dir, StateDirName)
		if err := os.Mkdir(sd, 0o700); err != nil {
			t.Fatal(err)
		}
		key := bytes.Repeat([]byte{7}, KeySize)
		if err := os.WriteFile(filepath.Join(sd, KeyName), key, 0o600); err != nil {
			t.Fatal(err)
		}
		if sign {
			data = append(append(data, '\n'), hex.EncodeToString(manifestMAC(key, data))+"\n"...)
		}
		if err := os.WriteFile(filepath.Join(sd, ManifestName(path)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := fbtest.TreeSum(t, victim, filepath.Join(dir, "ev.log.decoy"), filepath.Join(dir, "ev.log.hardlink"), filepath.Join(dir, "ev.log.symlink"))
		arch := NewArchiver()
		s := newSeries(path, ArchiveOptions{MaxFiles: 1, MaxAge: time.Nanosecond, Compress: CompressGzip}, RealSys(), arch, nil,
			logger.New("fuzz", logger.NewWriterSink(io.Discard, logger.LevelDebug)), time.Now)
		s.recorded(path) // loads
		arch.Drain()
		s.retain(time.Now())
		arch.Drain()
		if after := fbtest.TreeSum(t, victim, filepath.Join(dir, "ev.log.decoy"), filepath.Join(dir, "ev.log.hardlink"), filepath.Join(dir, "ev.log.symlink")); after != before {
			t.Fatalf("a manifest changed files outside the rotated set:\n%s\n%s", before, after)
		}
	})
}

// identOfFile is the identity of a file, as a manifest records it.
func identOfFile(t *testing.T, name string) FileIdent {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(name, &st); err != nil {
		t.Fatal(err)
	}
	return IdentOf(&st)
}
