package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/freshen-io/freshen"
)

// Filter decides which keys freshen watches: under one of the prefixes,
// matching an include glob (if any) and no exclude glob.
type Filter struct {
	prefixes []string
	include  []*regexp.Regexp
	exclude  []*regexp.Regexp
}

// NewFilter compiles the source's prefixes and globs.
func NewFilter(s SourceConfig) (*Filter, error) {
	f := &Filter{prefixes: NormalizePrefixes(s.Prefix)}
	for _, p := range s.Include {
		re, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("config: include %q: %w", p, err)
		}
		f.include = append(f.include, re)
	}
	for _, p := range s.Exclude {
		re, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("config: exclude %q: %w", p, err)
		}
		f.exclude = append(f.exclude, re)
	}
	return f, nil
}

// Prefixes returns the sorted, non-overlapping prefixes to list ("" for
// the whole bucket).
func (f *Filter) Prefixes() []string { return f.prefixes }

// Match reports whether key is watched.
func (f *Filter) Match(key string) bool {
	// A metadata sidecar is watched when its document is: it tags the
	// document's chunks (it is never indexed itself).
	if freshen.IsSidecar(key) {
		key = freshen.DocumentOf(key)
	}
	under := false
	for _, p := range f.prefixes {
		if strings.HasPrefix(key, p) {
			under = true
			break
		}
	}
	if !under {
		return false
	}
	if len(f.include) > 0 {
		ok := false
		for _, re := range f.include {
			if re.MatchString(key) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.exclude {
		if re.MatchString(key) {
			return false
		}
	}
	return true
}

// NormalizePrefixes sorts prefixes and drops those inside another, so
// that listing each in turn visits every key once, in key order.
func NormalizePrefixes(in []string) []string {
	if len(in) == 0 {
		return []string{""}
	}
	ps := append([]string(nil), in...)
	sort.Strings(ps)
	var out []string
	for _, p := range ps {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// compileGlob turns a glob into an anchored regexp. A pattern without a
// slash matches the last path segment; with one, the whole key.
func compileGlob(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	var b strings.Builder
	if strings.Contains(p, "/") {
		b.WriteString("^")
	} else {
		b.WriteString("(?:^|/)")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				b.WriteString("(?:.*/)?") // "**/" matches zero or more segments
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [")
			}
			b.WriteString(p[i : i+j+1])
			i += j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
