package app

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// wantError is what a setting's parser returns for a value it refuses: the
// form of a good value with an example ("a duration such as 15m"). The
// caller adds the setting's name and the bad value.
type wantError string

func (e wantError) Error() string { return "want " + string(e) }

// setting is one configuration setting: a flag, its LATCH_* variable, the
// value it writes to, and how a good value looks.
type setting struct {
	flag, env, usage string
	// kind is the value's kind as help shows it (duration, int, bool, ...).
	kind  string
	value flag.Value
	// want describes a good value with an example, for errors.
	want string
	// def is the default as help shows it ("" for none).
	def string
	s   *settings
}

// Set parses v into the setting's value; on failure it records which
// setting failed, because the flag package's own message cannot say so.
func (st *setting) Set(v string) error {
	if err := st.value.Set(v); err != nil {
		st.s.failed = &settingError{st: st, raw: v, err: err}
		return err
	}
	return nil
}

func (st *setting) String() string {
	if st == nil || st.value == nil {
		return ""
	}
	return st.value.String()
}

// IsBoolFlag lets a boolean setting be given as a bare flag (-rate-limits).
func (st *setting) IsBoolFlag() bool {
	b, ok := st.value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// settings are all of latchd's settings, in the order help lists them.
type settings struct {
	fs     *flag.FlagSet
	list   []*setting
	byEnv  map[string]*setting
	byFlag map[string]*setting
	// failed is the last setting whose value was refused.
	failed *settingError
}

// defaultSettings returns the settings of the default configuration, for
// help and for the list of known variables.
func defaultSettings() *settings {
	c := DefaultConfig()
	return c.settings()
}

func newSettings() *settings {
	fs := flag.NewFlagSet("latchd", flag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(discard{})
	return &settings{fs: fs, byEnv: map[string]*setting{}, byFlag: map[string]*setting{}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// add registers a setting. want describes a good value with an example;
// kind is how help names the value.
func (s *settings) add(v flag.Value, name, env, usage, kind, want string) {
	st := &setting{flag: name, env: env, usage: usage, kind: kind, value: v, want: want, s: s}
	st.def = st.String()
	s.fs.Var(st, name, usage)
	s.list = append(s.list, st)
	if _, dup := s.byEnv[env]; !dup {
		s.byEnv[env] = st
	}
	s.byFlag[name] = st
}

// settingError is a value refused by a setting's parser or validation.
type settingError struct {
	st       *setting
	raw      string
	err      error
	fromFlag bool
}

func (e *settingError) Error() string {
	name := e.st.env
	if e.fromFlag {
		name = "-" + e.st.flag
	}
	// The setting's own description of a good value is the clearest; the
	// parser's error otherwise.
	msg := e.err.Error()
	if e.st.want != "" {
		msg = "want " + e.st.want
	}
	shown := showValue(e.st.env, e.raw)
	if e.fromFlag {
		return fmt.Sprintf("%s=%s (%s): %s", name, shown, e.st.env, msg)
	}
	return fmt.Sprintf("%s=%s: %s", name, shown, msg)
}

// isSecret reports whether the setting env holds a secret, or a URL that
// may hold a password: an error or help never shows it whole.
func isSecret(env string) bool {
	switch env {
	case "LATCH_MASTER_KEY", "LATCH_SMTP_URL", "LATCH_DATABASE_URL", "LATCH_DATABASE_DIRECT_URL", "LATCH_REDIS_URL", "LATCH_PROVIDERS":
		return true
	}
	return false
}

// showValue quotes a setting's value for an error message. A secret is
// never shown: a master key not at all, a URL with its password replaced
// (and not at all when it does not parse, since it may hold one).
func showValue(env, raw string) string {
	if !isSecret(env) || raw == "" {
		return strconv.Quote(raw)
	}
	if env == "LATCH_MASTER_KEY" || env == "LATCH_PROVIDERS" {
		return fmt.Sprintf("(%d characters, not shown)", len(raw))
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return strconv.Quote(u.Redacted())
	}
	return "(not shown: it may hold a password)"
}

// badValue returns the error for a setting's current value that validation
// refused: ENV="value": want ...
func (s *settings) badValue(env, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	st, ok := s.byEnv[env]
	if !ok {
		return errors.New(env + ": " + msg)
	}
	return fmt.Errorf("%s=%s: %s", env, showValue(env, st.String()), msg)
}

// apply sets each setting whose variable getenv returns, then the flags of
// args (flags win). Returns the error of the first refused value, naming
// the setting and the value.
func (s *settings) apply(args []string, getenv func(string) string) error {
	for _, st := range s.list {
		if v := getenv(st.env); v != "" {
			if err := st.Set(v); err != nil {
				return s.failed
			}
		}
	}
	s.failed = nil
	if err := s.fs.Parse(args); err != nil {
		if s.failed != nil {
			s.failed.fromFlag = true
			return s.failed
		}
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return s.unknownFlag(err, args)
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", s.fs.Args())
	}
	return nil
}

// unknownFlag rewrites the flag package's "flag provided but not defined"
// with the closest known flag.
func (s *settings) unknownFlag(err error, args []string) error {
	const prefix = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return err
	}
	name := msg[len(prefix):]
	known := make([]string, 0, len(s.byFlag))
	for f := range s.byFlag {
		known = append(known, f)
	}
	if c := closest(name, known); c != "" {
		return fmt.Errorf("unknown flag -%s: did you mean -%s? (latchd help lists the commands' flags)", name, c)
	}
	return fmt.Errorf("unknown flag -%s (latchd help lists the commands' flags)", name)
}

// closest returns the name in known nearest to name by edit distance, or ""
// when none is near enough to be a typo of it (at most a third of name's
// length apart, and at most 4 edits).
func closest(name string, known []string) string {
	best, bestD := "", 0
	sorted := slices.Clone(known)
	slices.Sort(sorted)
	for _, k := range sorted {
		d := levenshtein.ComputeDistance(name, k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD > 4 || bestD*3 > len(name) {
		return ""
	}
	return best
}

// ignoredVariable reports whether the LATCH_* variable name is not latchd's
// but expected beside it: those of Latch's clients and examples, and the
// tests' own (LATCH_TEST_*).
func ignoredVariable(name string) bool {
	switch name {
	case "LATCH_URL", "LATCH_API_KEY", "LATCH_TOKEN_FILE":
		return true
	}
	return strings.HasPrefix(name, "LATCH_TEST_")
}

// UnknownVariable is a LATCH_* variable of the environment that names no
// setting; Closest is the known variable it is likely a typo of ("" when
// none is near).
type UnknownVariable struct {
	Name    string
	Closest string
}

// UnknownVariables returns the LATCH_* variables of environ (in the form of
// os.Environ) that name no setting of latchd, each with the known variable
// nearest to it by edit distance, in the order of environ. The variables of
// Latch's clients (LATCH_URL, LATCH_API_KEY, LATCH_TOKEN_FILE) and of its
// tests (LATCH_TEST_*) are not reported.
func UnknownVariables(environ []string) []UnknownVariable {
	s := defaultSettings()
	known := make([]string, 0, len(s.byEnv))
	for env := range s.byEnv {
		known = append(known, env)
	}
	var out []UnknownVariable
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LATCH_") || ignoredVariable(name) {
			continue
		}
		if _, ok := s.byEnv[name]; ok {
			continue
		}
		out = append(out, UnknownVariable{Name: name, Closest: closest(name, known)})
	}
	return out
}

// The values of settings. Each Set refuses a bad value with a wantError.

type durationValue struct {
	p       *time.Duration
	example string
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return wantError("a duration such as " + v.example)
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return shortDuration(*v.p)
}

// shortDuration formats d without trailing zero units: 15m, 168h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

type intValue struct {
	p       *int
	example string
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return wantError("a whole number such as " + v.example)
	}
	*v.p = n
	return nil
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

type int64Value struct {
	p       *int64
	example string
}

func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return wantError("a whole number such as " + v.example)
	}
	*v.p = n
	return nil
}

func (v int64Value) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatInt(*v.p, 10)
}

// uintValue is an unsigned setting of at most bits bits.
type uintValue struct {
	set     func(uint64)
	get     func() uint64
	bits    int
	example string
}

func (v uintValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.bits)
	if err != nil {
		return wantError(fmt.Sprintf("a whole number from 0 to %d such as %s", uint64(1)<<v.bits-1, v.example))
	}
	v.set(n)
	return nil
}

func (v uintValue) String() string {
	if v.get == nil {
		return ""
	}
	return strconv.FormatUint(v.get(), 10)
}

type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return wantError("true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}

func (boolValue) IsBoolFlag() bool { return true }

type stringValue struct{ p *string }

func (v stringValue) Set(s string) error { *v.p = s; return nil }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// The checks of validation, each returning the want text of a bad value.

// wantAddress checks a listen address (host:port; the host may be empty).
func wantAddress(s, example string) string {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		if p, perr := strconv.Atoi(port); perr != nil || p < 0 || p > 65535 {
			err = errors.New("bad port")
		}
	}
	if err == nil && host != "" && strings.ContainsAny(host, " /") {
		err = errors.New("bad host")
	}
	if err != nil {
		return "host:port such as " + example
	}
	return ""
}

// wantURL checks an absolute URL whose scheme is one of schemes.
func wantURL(s string, example string, schemes ...string) string {
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(schemes, u.Scheme) || (u.Host == "" && u.Scheme != "sqlite") {
		return "a " + orList(schemes) + " URL such as " + example
	}
	return ""
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
