package fbtest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of the given size ("2m") on a new temp dir,
// unmounted when the test ends. It skips the test when not root or when the
// mount fails: a real small filesystem is how disk-full tests fill a disk.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	return MountTmpfsAt(t, t.TempDir(), size)
}

// MountTmpfsAt mounts a tmpfs of the given size on the existing directory
// dir, unmounted when the test ends; it skips the test as MountTmpfs does.
func MountTmpfsAt(t testing.TB, dir, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (run the tests as root, e.g. in the container)")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): no CAP_SYS_ADMIN?", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillDisk writes a filler file into dir until the filesystem is full, then
// frees keep bytes of it. It returns the filler's path: remove it to free
// the space again.
func FillDisk(t testing.TB, dir string, keep int64) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(block)
		n += int64(w)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	if err := f.Truncate(max(n-keep, 0)); err != nil {
		t.Fatal(err)
	}
	return p
}

// TreeSum describes every file under the roots — name, type, mode, size, a
// hash of its bytes, a link's target; "missing" for a root that does not
// exist — so that a test shows that nothing there changed.
func TreeSum(t testing.TB, roots ...string) string {
	t.Helper()
	var sb strings.Builder
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if os.IsNotExist(err) {
				fmt.Fprintf(&sb, "%s missing\n", p)
				return nil
			}
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&sb, "%s %v %d", p, fi.Mode(), fi.Size())
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				fmt.Fprintf(&sb, " -> %s", target)
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(&sb, " %x", sha256.Sum256(b))
			}
			sb.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return sb.String()
}
