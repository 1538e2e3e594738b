package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// settingSources are the packages that define drum's settings and flags.
var settingSources = []string{"../config", "../cmd/drum", "../supervisor"}

// internalNames are environment variables drum sets or reads for its own machinery,
// not settings for users.
var internalNames = map[string]bool{
	"DRUM_INIT_CHILD": true, // the init role marks the master it starts
	"NOTIFY_SOCKET":   true, // systemd's, set by systemd
	"TABLEFLIP_":      true, // tableflip's hand-over prefix
}

var envName = regexp.MustCompile(`^(MLOPS_RUNTIME_PARAM_)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)$`)

// definedSettings walks the non-test Go files of dirs: every string literal shaped like
// an environment variable (runtime parameters without their MLOPS_RUNTIME_PARAM_
// prefix), and every urfave/cli flag's name and aliases, as written on a command line.
func definedSettings(t *testing.T, dirs []string) (envs, flags []string) {
	t.Helper()
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
						if m := envName.FindStringSubmatch(s); m != nil && !internalNames[m[2]] {
							add(&envs, m[2])
						}
					}
				case *ast.CompositeLit:
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Flag") {
						for _, el := range n.Elts {
							kv, ok := el.(*ast.KeyValueExpr)
							if !ok {
								continue
							}
							switch kv.Key.(*ast.Ident).Name {
							case "Name":
								add(&flags, "--"+unquote(kv.Value))
							case "Aliases":
								for _, a := range kv.Value.(*ast.CompositeLit).Elts {
									add(&flags, "-"+unquote(a)) // DRUM's -cd
								}
							case "EnvVars": // ADDRESS, PRODUCTION: no underscore to match
								for _, a := range kv.Value.(*ast.CompositeLit).Elts {
									add(&envs, unquote(a))
								}
							}
						}
					}
				}
				return true
			})
		}
	}
	sort.Strings(envs)
	sort.Strings(flags)
	return envs, flags
}

func unquote(e ast.Expr) string {
	if lit, ok := e.(*ast.BasicLit); ok {
		s, _ := strconv.Unquote(lit.Value)
		return s
	}
	return ""
}

// missingFrom lists the names doc never mentions as a whole word in backquotes or text.
func missingFrom(doc string, names []string) []string {
	var out []string
	for _, n := range names {
		re := regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(n) + `($|[^A-Za-z0-9_-])`)
		if !re.MatchString(doc) {
			out = append(out, n)
		}
	}
	return out
}

// TestMovingFromDRUMCoversEverySetting: every setting and flag the code defines is on
// the "moving from DRUM" page, so the page cannot silently fall behind.
func TestMovingFromDRUMCoversEverySetting(t *testing.T) {
	b, err := os.ReadFile("moving-from-drum.md")
	if err != nil {
		t.Fatal(err)
	}
	envs, flags := definedSettings(t, settingSources)
	// The scan must see the settings it is meant to see.
	for _, want := range []string{"DRUM_GUNICORN_GRACEFUL_TIMEOUT", "CUSTOM_MODEL_WORKERS", "DRUM_AUTH_HEADER", "CODE_DIR", "DRUM_NO_INIT", "ADDRESS"} {
		if missingFrom(strings.Join(envs, " "), []string{want}) != nil {
			t.Fatalf("the scan missed %s; found %v", want, envs)
		}
	}
	for _, want := range []string{"--code-dir", "-cd", "--with-error-server", "--output"} {
		if missingFrom(strings.Join(flags, " "), []string{want}) != nil {
			t.Fatalf("the scan missed %s; found %v", want, flags)
		}
	}
	if miss := missingFrom(string(b), append(envs, flags...)); len(miss) > 0 {
		t.Errorf("docs/moving-from-drum.md does not mention %v (defined in %v)", miss, settingSources)
	}
}

func TestMissingFromIsWholeWord(t *testing.T) {
	doc := "set `DRUM_LOG_FORMAT_X` and --code-dirs"
	if got := missingFrom(doc, []string{"DRUM_LOG_FORMAT", "--code-dir"}); len(got) != 2 {
		t.Fatalf("missingFrom = %v, want both reported (only longer names are in the text)", got)
	}
	if got := missingFrom("`DRUM_LOG_FORMAT` / `--code-dir`", []string{"DRUM_LOG_FORMAT", "--code-dir"}); len(got) != 0 {
		t.Fatalf("missingFrom = %v", got)
	}
}

// TestDocsLinks: README links every page, and every relative link in the pages
// resolves.
func TestDocsLinks(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob("*.md")
	for _, p := range pages {
		if !strings.Contains(string(readme), "(docs/"+p+")") {
			t.Errorf("README.md does not link docs/%s", p)
		}
		b, _ := os.ReadFile(p)
		for _, m := range regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(string(b), -1) {
			if _, err := os.Stat(m[1]); err != nil {
				t.Errorf("docs/%s links %s, which does not exist", p, m[1])
			}
		}
	}
}
