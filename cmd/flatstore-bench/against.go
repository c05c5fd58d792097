package main

// -against REF: the core's benchmarks of this tree against those of an
// earlier commit, in one run. Both test binaries are built first; then the
// old and the new one run in turn, -count times each, so that a machine
// that slows down or speeds up during the run affects both alike. The
// table shows the medians and new/old.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/flatstore/flatstore/internal/repo"
)

// againstBench is what -against runs unless -against-bench says otherwise.
const againstBench = "^Benchmark(Flush|AppendLine|Scale)$"

// runAgainst compares the core's benchmarks matching re at ref and in the
// working tree, count alternated runs each.
func runAgainst(w io.Writer, ref, re, benchtime string, count int) error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "flatstore-bench-against-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The old tree, exported from git (no worktree to clean up).
	old := filepath.Join(tmp, "old")
	if err := os.Mkdir(old, 0o755); err != nil {
		return err
	}
	logf("exporting %s", ref)
	archive := exec.Command("git", "archive", "--format=tar", ref)
	archive.Dir = root
	untar := exec.Command("tar", "-x", "-C", old)
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return err
	}
	archive.Stderr, untar.Stderr = os.Stderr, os.Stderr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %v", ref, err)
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("tar: %v", err)
	}
	bins := map[string]string{"old": filepath.Join(tmp, "old.test"), "new": filepath.Join(tmp, "new.test")}
	for name, dir := range map[string]string{"old": old, "new": root} {
		logf("building the %s core's benchmarks", name)
		build := exec.Command("go", "test", "-c", "-o", bins[name], "./flatstore/")
		build.Dir = dir
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the %s core: %v", name, err)
		}
	}

	runs := map[string][]byte{}
	for i := 0; i < count; i++ {
		for _, name := range []string{"old", "new"} {
			logf("run %d/%d: %s", i+1, count, name)
			cmd := exec.Command(bins[name], "-test.run", "^$", "-test.bench", re, "-test.benchtime", benchtime)
			cmd.Dir = filepath.Join(root, "flatstore")
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("%s benchmarks: %v", name, err)
			}
			runs[name] = append(runs[name], out...)
		}
	}
	oldRes, newRes := parseBench(runs["old"]), parseBench(runs["new"])
	var names []string
	for n := range newRes {
		if _, ok := oldRes[n]; ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nthis tree against %s: the core's benchmarks, %d alternated runs each (-benchtime %s), medians\n", ref, count, benchtime)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tunit\t"+ref+"\tthis tree\tnew/old\t")
	for _, n := range names {
		unit := "ns/record"
		if _, ok := newRes[n][unit]; !ok {
			unit = "ns/op"
		}
		o, nw := oldRes[n][unit], newRes[n][unit]
		if o <= 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.3f×\t\n", n, unit, o, nw, nw/o)
	}
	if len(names) == 0 {
		fmt.Fprintln(tw, "(no benchmark matching "+strings.TrimSpace(re)+" exists in both)\t\t\t\t\t")
	}
	return tw.Flush()
}
