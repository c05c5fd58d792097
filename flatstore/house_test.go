package flatstore_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The house rules of the core, checked on its source: no package-level
// mutable state (process-wide state is an object someone owns and passes
// down), and each package imports only the packages below it (doc.go:
// the layers). The compiler refuses a cycle; TestImportRules refuses an
// import that would turn the layers upside down without making one.

// coreDirs are the packages the rules hold for.
var coreDirs = []string{".", "control", "event", "filestore", "logger", "strftime"}

// parseDir parses the non-test Go files of dir.
func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// TestNoPackageState: every package-level variable of the core is a
// sentinel error (errors.New), nothing else.
func TestNoPackageState(t *testing.T) {
	for _, dir := range coreDirs {
		fset := token.NewFileSet()
		for _, f := range parseDir(t, fset, dir) {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				for _, sp := range gd.Specs {
					vs := sp.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if n.Name == "_" {
							continue // an interface assertion
						}
						if i < len(vs.Values) && isErrorsNew(vs.Values[i]) {
							continue
						}
						t.Errorf("%v: package-level variable %s: process-wide state must be an object passed down, not a global",
							fset.Position(n.Pos()), n.Name)
					}
				}
			}
		}
	}
}

func isErrorsNew(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "errors" && sel.Sel.Name == "New"
}

// allowed is what each core package may import of the project (its own
// tests aside); nothing in the core imports cgo.
var allowed = map[string][]string{
	".":         {"flatstore/event", "flatstore/filestore", "flatstore/logger", "flatstore/strftime"},
	"event":     {"flatstore/strftime"},
	"filestore": {"flatstore/logger", "flatstore/strftime"},
	"logger":    {},
	"strftime":  {},
	"control":   {"flatstore", "flatstore/filestore", "flatstore/logger"},
}

// TestImportRules: event imports nothing of the project but the strftime
// grammar, filestore only the logger and that grammar, the core only the
// four below it, and no core package imports "C".
func TestImportRules(t *testing.T) {
	const module = "github.com/flatstore/flatstore/"
	for _, dir := range coreDirs {
		fset := token.NewFileSet()
		for _, f := range parseDir(t, fset, dir) {
			for _, im := range f.Imports {
				path := strings.Trim(im.Path.Value, `"`)
				if path == "C" {
					t.Errorf("%v: the core imports cgo", fset.Position(im.Pos()))
				}
				rest, ours := strings.CutPrefix(path, module)
				if ours && !slices.Contains(allowed[dir], rest) {
					t.Errorf("%v: package %s imports %s; it may import only %q", fset.Position(im.Pos()), dir, path, allowed[dir])
				}
			}
		}
	}
}
