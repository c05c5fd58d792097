package fbtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
