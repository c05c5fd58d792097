package configs_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The files of the flatstore package, as dpkg-deb --contents lists them: mode,
// owner and path (directories end in /). make package builds it; the tarball
// beside each .deb holds the same files.
var packageFiles = []string{
	"drwxr-xr-x root/root ./",
	"drwxr-xr-x root/root ./etc/",
	"drwxr-xr-x root/root ./etc/fluent-bit/",
	"-rw-r--r-- root/root ./etc/fluent-bit/flatstore-plugins.conf",
	"drwxr-xr-x root/root ./etc/logrotate.d/",
	"-rw-r--r-- root/root ./etc/logrotate.d/flatstore",
	"drwxr-xr-x root/root ./usr/",
	"drwxr-xr-x root/root ./usr/bin/",
	"-rwxr-xr-x root/root ./usr/bin/flatstore-ctl",
	"drwxr-xr-x root/root ./usr/lib/",
	"drwxr-xr-x root/root ./usr/lib/fluent-bit/",
	"-rw-r--r-- root/root ./usr/lib/fluent-bit/out_flatstore.so",
	"drwxr-xr-x root/root ./usr/lib/tmpfiles.d/",
	"-rw-r--r-- root/root ./usr/lib/tmpfiles.d/flatstore.conf",
	"drwxr-xr-x root/root ./usr/share/",
	"drwxr-xr-x root/root ./usr/share/doc/",
	"drwxr-xr-x root/root ./usr/share/doc/flatstore/",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/README.md.gz",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/changelog.Debian.gz",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/copyright",
	"drwxr-xr-x root/root ./usr/share/doc/flatstore/examples/",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/fluent-bit.conf",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/fluent-bit.yaml",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/opensips-sidecar.conf",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/opensips-sidecar.yaml",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/opensips.cfg",
	"-rw-r--r-- root/root ./usr/share/doc/flatstore/examples/parsers.conf",
	"drwxr-xr-x root/root ./usr/share/lintian/",
	"drwxr-xr-x root/root ./usr/share/lintian/overrides/",
	"-rw-r--r-- root/root ./usr/share/lintian/overrides/flatstore",
	"drwxr-xr-x root/root ./usr/share/man/",
	"drwxr-xr-x root/root ./usr/share/man/man1/",
	"-rw-r--r-- root/root ./usr/share/man/man1/flatstore-ctl.1.gz",
}

// TestPackage checks each .deb that make package left in build/pkg/ (skipped
// when there is none, or no dpkg-deb): its fields, its files, its conffiles,
// that the plugins file names the .so it holds, built for its architecture,
// that it carries conf/'s logrotate stanza and a tmpfiles entry for the
// control socket's directory, and that the tarball holds the same files.
func TestPackage(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb")
	}
	debs, _ := filepath.Glob(filepath.Join(repoRoot(t), "build", "pkg", "flatstore_*.deb"))
	if len(debs) == 0 {
		t.Skip("no package in build/pkg (make package)")
	}
	name := regexp.MustCompile(`^flatstore_([0-9][^_]*-[0-9]+)_(amd64|arm64)\.deb$`)
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, deb := range debs {
		t.Run(filepath.Base(deb), func(t *testing.T) {
			m := name.FindStringSubmatch(filepath.Base(deb))
			if m == nil {
				t.Fatalf("%s: want flatstore_VERSION-REVISION_ARCH.deb", filepath.Base(deb))
			}
			run := func(args ...string) string {
				t.Helper()
				out, err := exec.Command(args[0], args[1:]...).Output()
				if err != nil {
					t.Fatalf("%s: %v", strings.Join(args, " "), err)
				}
				return string(out)
			}
			field := func(f string) string { return strings.TrimSpace(run("dpkg-deb", "-f", deb, f)) }
			if got := field("Package") + " " + field("Version") + " " + field("Architecture"); got != "flatstore "+m[1]+" "+m[2] {
				t.Errorf("Package Version Architecture: %q, want flatstore %s %s", got, m[1], m[2])
			}
			if d := field("Depends"); !regexp.MustCompile(`^libc6 \(>= 2\.\d+\)$`).MatchString(d) {
				t.Errorf("Depends: %q, want libc6 (>= 2.x) only", d)
			}

			var files []string
			for _, l := range strings.Split(strings.TrimSpace(run("dpkg-deb", "--contents", deb)), "\n") {
				f := strings.Fields(l) // mode owner size date time path
				files = append(files, f[0]+" "+f[1]+" "+f[len(f)-1])
			}
			if !slices.Equal(files, packageFiles) {
				t.Errorf("files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(packageFiles, "\n"))
			}
			ctl := t.TempDir()
			run("dpkg-deb", "--control", deb, ctl)
			if c, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(c) != "/etc/fluent-bit/flatstore-plugins.conf\n/etc/logrotate.d/flatstore\n" {
				t.Errorf("conffiles: %q", c)
			}
			for _, s := range []string{"postinst", "postrm"} {
				if fi, err := os.Stat(filepath.Join(ctl, s)); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: %v", s, err)
				}
			}

			root := t.TempDir()
			run("dpkg-deb", "--extract", deb, root)
			plugins, _ := os.ReadFile(filepath.Join(root, "etc/fluent-bit/flatstore-plugins.conf"))
			if !regexp.MustCompile(`(?m)^\[PLUGINS\]\n\s+Path /usr/lib/fluent-bit/out_flatstore\.so$`).Match(plugins) {
				t.Errorf("flatstore-plugins.conf does not name /usr/lib/fluent-bit/out_flatstore.so:\n%s", plugins)
			}
			for path, want := range map[string]elf.Machine{"usr/lib/fluent-bit/out_flatstore.so": machine[m[2]], "usr/bin/flatstore-ctl": machine[m[2]]} {
				f, err := elf.Open(filepath.Join(root, path))
				if err != nil {
					t.Fatal(err)
				}
				if f.Machine != want {
					t.Errorf("%s: %v, want %v", path, f.Machine, want)
				}
				f.Close()
			}
			// conf/logrotate.conf as it was when the package was built: a package
			// older than the file is not compared (make package rebuilds it).
			stanza, _ := os.ReadFile(filepath.Join(root, "etc/logrotate.d/flatstore"))
			debInfo, err1 := os.Stat(deb)
			confInfo, err2 := os.Stat("logrotate.conf")
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if conf, _ := os.ReadFile("logrotate.conf"); debInfo.ModTime().Before(confInfo.ModTime()) {
				t.Logf("%s is older than conf/logrotate.conf: its stanza not compared (make package)", filepath.Base(deb))
			} else if !bytes.Equal(stanza, conf) {
				t.Errorf("/etc/logrotate.d/flatstore differs from conf/logrotate.conf")
			}
			tmpfiles, _ := os.ReadFile(filepath.Join(root, "usr/lib/tmpfiles.d/flatstore.conf"))
			if !regexp.MustCompile(`(?m)^d ` + regexp.QuoteMeta(filepath.Dir(controlSocket)) + ` 0750 root root -$`).Match(tmpfiles) {
				t.Errorf("tmpfiles.d/flatstore.conf does not create %s:\n%s", filepath.Dir(controlSocket), tmpfiles)
			}

			// The tarball: the same files, sizes and modes, rooted at /.
			tgz := strings.TrimSuffix(deb, ".deb") + ".tar.gz"
			if _, err := os.Stat(tgz); err != nil {
				t.Fatalf("no tarball beside the .deb: %v", err)
			}
			sizes := func(listing string) []string {
				var out []string
				for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
					f := strings.Fields(l) // tar --numeric-owner lists root as 0/0
					out = append(out, f[0]+" "+strings.Replace(f[1], "0/0", "root/root", 1)+" "+f[2]+" "+f[len(f)-1])
				}
				return out
			}
			if a, b := sizes(run("dpkg-deb", "--contents", deb)), sizes(run("tar", "-tvzf", tgz)); !slices.Equal(a, b) {
				t.Errorf("the tarball's files differ from the .deb's:\n%s\nvs\n%s", strings.Join(b, "\n"), strings.Join(a, "\n"))
			}
		})
	}
}
