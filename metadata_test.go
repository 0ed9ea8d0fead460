package freshen

import (
	"strings"
	"testing"
	"time"
)

func TestParseSidecar(t *testing.T) {
	m, err := ParseSidecar([]byte(`{"metadataAttributes": {"dept": "sales", "year": 2024, "public": true, "tags": ["a", "b"],
		"owner": {"value": {"type": "STRING", "stringValue": "ana"}, "includeForEmbedding": true},
		"score": {"value": {"type": "NUMBER", "numberValue": 4.5}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m["dept"] != "sales" || m["year"] != 2024.0 || m["public"] != true || strings.Join(m["tags"].([]string), ",") != "a,b" ||
		m["owner"] != "ana" || m["score"] != 4.5 {
		t.Fatalf("parsed %#v", m)
	}
	for _, bad := range []string{`{}`, `not json`, `{"metadataAttributes": {"x": [1, 2]}}`, `{"metadataAttributes": {"x": {"y": 1}}}`} {
		if _, err := ParseSidecar([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestFilters(t *testing.T) {
	meta := ObjectMetadata(ObjectInfo{Size: 2048, ContentType: "text/markdown", LastModified: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
		Metadata: map[string]string{"dept": "sales"}}, map[string]any{"year": 2024.0, "tags": []string{"eu", "retail"}, "published": "2024-06-30"})
	cases := []struct {
		filter string
		want   bool
	}{
		{"dept=sales", true}, {"dept=support", false}, {"dept=support|sales", true}, {"dept!=sales", false}, {"dept!=hr", true},
		{"missing=x", false}, {"missing!=x", true},
		{"year>=2024", true}, {"year>2024", false}, {"year<2030", true}, {"year=2024", true}, {"size>1000", true}, {"size<=1024", false},
		{"tags=retail", true}, {"tags=us", false}, {"tags!=eu", false},
		{"published>=2024-01-01", true}, {"published<2024-06-01", false}, {"last_modified>2025-02-28", true},
		{"last_modified<2025-03-01T09:00:00Z", false}, {"content_type=text/markdown", true},
	}
	for _, c := range cases {
		f, err := ParseFilter(c.filter)
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if got := f.Match(meta); got != c.want {
			t.Errorf("%s on %v: %v, want %v", c.filter, meta, got, c.want)
		}
		if f.String() != c.filter {
			t.Errorf("%s prints as %s", c.filter, f)
		}
	}
	for _, bad := range []string{"", "=x", "novalue", "<3"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if MetadataHash(meta) == MetadataHash(ObjectMetadata(ObjectInfo{Size: 2048}, nil)) || MetadataHash(meta) != MetadataHash(meta) {
		t.Fatal("metadata hash")
	}
}
