// Package repo finds the repository's root, for the tools and tests that
// read its files (conf/, the OpenSIPS vectors, host/).
package repo

import (
	"errors"
	"os"
	"path/filepath"
)

// Root returns the directory holding go.mod, found by walking up from the
// working directory.
func Root() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("repo: no go.mod above the working directory")
		}
		d = parent
	}
}
