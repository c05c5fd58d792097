package flatstore_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The house rules of the core, checked on its source: no package-level
// mutable state (process-wide state is an object someone owns and passes
// down), and no file that uses a name of a file above it (the files form
// layers: each uses only those below, so a reader can take them in order).

// coreDirs are the packages the rules hold for.
var coreDirs = []string{".", "control"}

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

// TestFileLayers: within the core package, the graph of "file A uses a
// name declared in file B" (package-level names, methods and fields, as the
// type checker resolves them) has no cycle.
func TestFileLayers(t *testing.T) {
	fset := token.NewFileSet()
	files := parseDir(t, fset, ".")
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	// Other packages are not type-checked (a stand-in empty package each,
	// fast): names of this package resolve all the same.
	conf := types.Config{Importer: emptyImporter{}, Error: func(error) {}}
	pkg, _ := conf.Check("github.com/flatstore/flatstore/flatstore", fset, files, info)
	fileOf := func(p token.Pos) string { return filepath.Base(fset.Position(p).Filename) }
	uses := map[string]map[string]string{} // from → to → an example name
	add := func(at token.Pos, obj types.Object) {
		if obj == nil || obj.Pkg() != pkg || !obj.Pos().IsValid() {
			return
		}
		from, to := fileOf(at), fileOf(obj.Pos())
		if from == to {
			return
		}
		// Only names of the package's scope, methods and fields: not a
		// function's locals.
		if v, ok := obj.(*types.Var); ok && !v.IsField() && obj.Parent() != pkg.Scope() {
			return
		}
		if uses[from] == nil {
			uses[from] = map[string]string{}
		}
		if _, seen := uses[from][to]; !seen {
			uses[from][to] = fmt.Sprintf("%s (%v)", obj.Name(), fset.Position(at))
		}
	}
	for id, obj := range info.Uses {
		add(id.Pos(), obj)
	}
	for sel, s := range info.Selections {
		add(sel.Sel.Pos(), s.Obj())
	}
	if len(uses) < 5 {
		t.Fatalf("only %d files use another: the type check did not resolve the package", len(uses))
	}
	// Depth-first search for a cycle.
	var names []string
	for f := range uses {
		names = append(names, f)
	}
	sort.Strings(names)
	state := map[string]int{} // 0 new, 1 on the path, 2 done
	var path []string
	var visit func(string) bool
	visit = func(f string) bool {
		state[f] = 1
		path = append(path, f)
		var tos []string
		for to := range uses[f] {
			tos = append(tos, to)
		}
		sort.Strings(tos)
		for _, to := range tos {
			switch state[to] {
			case 1:
				i := 0
				for path[i] != to {
					i++
				}
				cycle := append(append([]string{}, path[i:]...), to)
				var why []string
				for k := 0; k+1 < len(cycle); k++ {
					why = append(why, fmt.Sprintf("%s uses %s's %s", cycle[k], cycle[k+1], uses[cycle[k]][cycle[k+1]]))
				}
				t.Errorf("files of the core use each other in a cycle %s:\n  %s", strings.Join(cycle, " → "), strings.Join(why, "\n  "))
				return true
			case 0:
				if visit(to) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[f] = 2
		return false
	}
	for _, f := range names {
		if state[f] == 0 && visit(f) {
			return
		}
	}
	// The layers, bottom first, for the reader of a failure.
	if testing.Verbose() {
		order := topo(uses)
		fmt.Fprintln(os.Stderr, "core files, lowest layer first:", strings.Join(order, " "))
	}
}

// topo orders the files so that each comes after those it uses.
func topo(uses map[string]map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(f string) {
		if seen[f] {
			return
		}
		seen[f] = true
		var tos []string
		for to := range uses[f] {
			tos = append(tos, to)
		}
		sort.Strings(tos)
		for _, to := range tos {
			visit(to)
		}
		out = append(out, f)
	}
	var names []string
	for f := range uses {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		visit(f)
	}
	return out
}

// emptyImporter imports every package as an empty one.
type emptyImporter struct{}

func (emptyImporter) Import(path string) (*types.Package, error) {
	name := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	p := types.NewPackage(path, name)
	p.MarkComplete()
	return p, nil
}
