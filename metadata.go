package freshen

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SidecarSuffix names an object's metadata sidecar: KEY.metadata.json
// holds attributes for KEY in the Amazon Bedrock Knowledge Bases format,
// {"metadataAttributes": {"NAME": VALUE, ...}}. A sidecar is never
// indexed as a document; a change to it re-tags KEY's chunks.
const SidecarSuffix = ".metadata.json"

// IsSidecar reports whether key is a metadata sidecar.
func IsSidecar(key string) bool {
	return strings.HasSuffix(key, SidecarSuffix) && len(key) > len(SidecarSuffix)
}

// SidecarOf is the key of key's sidecar; DocumentOf the reverse.
func SidecarOf(key string) string  { return key + SidecarSuffix }
func DocumentOf(key string) string { return strings.TrimSuffix(key, SidecarSuffix) }

// MaxSidecarBytes bounds a sidecar.
const MaxSidecarBytes = 64 << 10

// ParseSidecar reads a sidecar's attributes. Values may be strings,
// numbers, booleans or lists of strings, plainly or in Bedrock's typed
// form ({"value": {"type": "STRING", "stringValue": "..."}}).
func ParseSidecar(b []byte) (map[string]any, error) {
	var doc struct {
		MetadataAttributes map[string]json.RawMessage `json:"metadataAttributes"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("metadata sidecar: %w", err)
	}
	if doc.MetadataAttributes == nil {
		return nil, errors.New(`metadata sidecar: no "metadataAttributes" object`)
	}
	out := make(map[string]any, len(doc.MetadataAttributes))
	for name, raw := range doc.MetadataAttributes {
		v, err := sidecarValue(raw)
		if err != nil {
			return nil, fmt.Errorf("metadata sidecar: attribute %q: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func sidecarValue(raw json.RawMessage) (any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string, float64, bool:
		return x, nil
	case []any:
		list := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("a list may hold strings only")
			}
			list = append(list, s)
		}
		return list, nil
	case map[string]any:
		typed, ok := x["value"].(map[string]any)
		if !ok {
			return nil, errors.New(`an object value must be Bedrock's typed form {"value": {...}}`)
		}
		for _, k := range []string{"stringValue", "numberValue", "booleanValue", "stringListValue"} {
			if tv, ok := typed[k]; ok {
				b, _ := json.Marshal(tv)
				return sidecarValue(b)
			}
		}
		return nil, errors.New("a typed value needs stringValue, numberValue, booleanValue or stringListValue")
	}
	return nil, errors.New("want a string, number, boolean or list of strings")
}

// ObjectMetadata is what a version of an object says about itself, as
// each of its chunks carries it: its user metadata, content_type, size and
// last_modified, then the sidecar's attributes (which win on a clash).
func ObjectMetadata(obj ObjectInfo, sidecar map[string]any) map[string]any {
	m := make(map[string]any, len(obj.Metadata)+3+len(sidecar))
	for k, v := range obj.Metadata {
		m[k] = v
	}
	if obj.ContentType != "" {
		m["content_type"] = obj.ContentType
	}
	m["size"] = float64(obj.Size)
	if !obj.LastModified.IsZero() {
		m["last_modified"] = obj.LastModified.UTC().Format(time.RFC3339)
	}
	maps.Copy(m, sidecar)
	return m
}

// MetadataHash identifies metadata: equal maps, equal hashes.
func MetadataHash(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // map keys are sorted
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// Filter is one condition on chunk metadata: Attr Op Values.
type Filter struct {
	Attr string `json:"attr"`
	// Op is "=", "!=", "<", "<=", ">" or ">=".
	Op string `json:"op"`
	// Values holds one value, or for "=" several (any of them matches).
	Values []string `json:"values"`
}

// ParseFilter reads a filter written ATTR=VALUE (equal), ATTR=V1|V2 (any
// of), ATTR!=VALUE, or ATTR<VALUE, ATTR<=VALUE, ATTR>VALUE, ATTR>=VALUE:
// numbers compare as numbers, dates (2024-05-01, or RFC 3339 times) as
// times, anything else as text. A list attribute matches when one of its
// elements does.
func ParseFilter(s string) (Filter, error) {
	i := strings.IndexAny(s, "=<>!")
	if i <= 0 {
		return Filter{}, fmt.Errorf("filter %q: want ATTR=VALUE, ATTR=V1|V2, ATTR!=VALUE, or ATTR<, <=, >, >= VALUE", s)
	}
	f := Filter{Attr: strings.TrimSpace(s[:i])}
	rest := s[i:]
	for _, op := range []string{"<=", ">=", "!=", "=", "<", ">"} {
		if strings.HasPrefix(rest, op) {
			f.Op, rest = op, rest[len(op):]
			break
		}
	}
	if f.Op == "" || f.Attr == "" {
		return Filter{}, fmt.Errorf("filter %q: want ATTR=VALUE, ATTR=V1|V2, ATTR!=VALUE, or ATTR<, <=, >, >= VALUE", s)
	}
	if f.Op == "=" {
		f.Values = strings.Split(rest, "|")
	} else {
		f.Values = []string{rest}
	}
	return f, nil
}

func (f Filter) String() string { return f.Attr + f.Op + strings.Join(f.Values, "|") }

// MatchAll reports whether meta satisfies every filter.
func MatchAll(filters []Filter, meta map[string]any) bool {
	for _, f := range filters {
		if !f.Match(meta) {
			return false
		}
	}
	return true
}

// Match reports whether meta satisfies f. A missing attribute satisfies
// only "!=".
func (f Filter) Match(meta map[string]any) bool {
	v, ok := meta[f.Attr]
	if !ok {
		return f.Op == "!="
	}
	var elems []any
	switch x := v.(type) {
	case []string:
		for _, e := range x {
			elems = append(elems, e)
		}
	case []any:
		elems = x
	default:
		elems = []any{v}
	}
	if f.Op == "!=" {
		// Not equal to the value: no element equals it.
		return !slices.ContainsFunc(elems, func(e any) bool { return Compare(e, f.Values[0]) == 0 })
	}
	return slices.ContainsFunc(elems, func(e any) bool {
		return slices.ContainsFunc(f.Values, func(want string) bool { return compareOp(f.Op, Compare(e, want)) })
	})
}

func compareOp(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

// Compare orders a metadata value against a filter's value: as numbers
// when both are, as times when both are dates, else as text.
func Compare(v any, want string) int {
	switch x := v.(type) {
	case float64:
		if w, err := strconv.ParseFloat(want, 64); err == nil {
			return cmp.Compare(x, w)
		}
	case int:
		if w, err := strconv.ParseFloat(want, 64); err == nil {
			return cmp.Compare(float64(x), w)
		}
	case int64:
		if w, err := strconv.ParseFloat(want, 64); err == nil {
			return cmp.Compare(float64(x), w)
		}
	case bool:
		return strings.Compare(strconv.FormatBool(x), strings.ToLower(want))
	case string:
		if a, ok := ParseDate(x); ok {
			if b, ok := ParseDate(want); ok {
				return a.Compare(b)
			}
		}
		return strings.Compare(x, want)
	}
	return strings.Compare(fmt.Sprint(v), want)
}

// ParseDate reads a date (2006-01-02) or an RFC 3339 time.
func ParseDate(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
