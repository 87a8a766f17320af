package docs

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
)

// The Markdown this test reads: the README and every page of docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "README.md")}, files...)
}

var (
	// inlineLink matches [text](target) and ![alt](target); the target ends
	// at the first space (a title may follow) or closing parenthesis.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef matches a reference definition: [name]: target
	refDef = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// codeSpan matches inline code, whose brackets are not links.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	heading  = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
)

type link struct {
	file   string
	line   int
	target string
}

// links returns the links of a Markdown file outside fenced code blocks and
// code spans.
func links(t *testing.T, file string) []link {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []link
	fence := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{file, n, m[1]})
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, link{file, n, m[1]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// anchor is the fragment GitHub gives a heading: lower case, punctuation
// dropped, spaces as hyphens.
func anchor(h string) string {
	h = strings.ToLower(h)
	var b strings.Builder
	for _, r := range h {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors returns the heading fragments of a Markdown file, with GitHub's
// -1, -2 suffixes for repeated headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := anchor(m[1])
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestRelativeLinksResolve fails on a relative link of README.md or
// docs/*.md whose file does not exist, or whose #fragment names no heading
// of the Markdown file it points at.
func TestRelativeLinksResolve(t *testing.T) {
	checked := 0
	for _, file := range markdownFiles(t) {
		for _, l := range links(t, file) {
			target := l.target
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			resolved := file
			if path != "" {
				if strings.HasPrefix(path, "/") {
					t.Errorf("%s:%d: %q: use a relative link, not one from the site's root", l.file, l.line, target)
					continue
				}
				resolved = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if _, err := os.Stat(resolved); err != nil {
					t.Errorf("%s:%d: %q: %s does not exist", l.file, l.line, target, resolved)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(resolved, ".md") && !anchors(t, resolved)[frag] {
				t.Errorf("%s:%d: %q: %s has no heading #%s", l.file, l.line, target, resolved, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no relative links: the parser is broken")
	}
}

func TestAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"Errors: one format everywhere":                                "errors-one-format-everywhere",
		"Behind a connection pooler (PgBouncer, Supavisor, RDS Proxy)": "behind-a-connection-pooler-pgbouncer-supavisor-rds-proxy",
		"One request: `POST /auth/refresh`":                            "one-request-post-authrefresh",
		"Security review and topology (December 2): before and after":  "security-review-and-topology-december-2-before-and-after",
	} {
		if got := anchor(in); got != want {
			t.Errorf("anchor(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSecurityDocListsTheSpecsAssurance keeps the table of operations and
// their assurance in security.md equal to what openapi.yaml declares.
func TestSecurityDocListsTheSpecsAssurance(t *testing.T) {
	doc, err := os.ReadFile("security.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+) (\\S+)` \\| `(\\w+)` \\| (aal[12])")
	inDoc := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		inDoc[m[3]] = m[1] + " " + m[2] + " " + m[4]
	}
	inSpec := specAssurance(t)
	for op, want := range inSpec {
		if inDoc[op] != want {
			t.Errorf("security.md lists %s as %q; the spec declares %q", op, inDoc[op], want)
		}
	}
	for op := range inDoc {
		if _, ok := inSpec[op]; !ok {
			t.Errorf("security.md lists %s, which declares no assurance in the spec", op)
		}
	}
}

// specAssurance returns, per operationId, "METHOD path level" for every
// operation of openapi.yaml that declares x-latch-assurance.
func specAssurance(t *testing.T) map[string]string {
	t.Helper()
	spec, err := openapi3.NewLoader().LoadFromFile(filepath.Join("..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if level, ok := op.Extensions["x-latch-assurance"].(string); ok {
				out[op.OperationID] = method + " " + path + " " + level
			}
		}
	}
	return out
}
