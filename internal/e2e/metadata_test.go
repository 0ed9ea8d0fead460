package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestMetadataFromS3: user metadata (x-amz-meta-*) and a sidecar reach
// the chunks through versitygw's real events; search filters on them; a
// copy onto itself with new metadata (MetadataDirective REPLACE) re-tags
// the chunks without embedding a token.
func TestMetadataFromS3(t *testing.T) {
	w := newWorld(t, "1h", 0)
	ctx := context.Background()
	put := func(key, body string, meta map[string]string) {
		t.Helper()
		if _, err := w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key),
			ContentType: aws.String("text/markdown"), Body: strings.NewReader(body), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		put(fmt.Sprintf("kb/doc %d.md", i), fmt.Sprintf("# Doc %d\n\nA note about lighthouses and harbors, number %d.\n", i, i),
			map[string]string{"dept": []string{"sales", "support"}[i%2]})
	}
	put("kb/doc 0.md.metadata.json", `{"metadataAttributes": {"year": 2025, "regions": ["eu"]}}`, nil)
	keys := func(filters ...string) string {
		t.Helper()
		q := "/v1/search?q=lighthouses&k=20"
		for _, f := range filters {
			q += "&filter=" + url.QueryEscape(f)
		}
		var hits []hit
		if code := w.get(q, &hits); code != 200 {
			t.Fatalf("search %v: %d", filters, code)
		}
		var ks []string
		for _, h := range hits {
			ks = append(ks, h.Key)
		}
		return strings.Join(ks, ",")
	}
	waitFor(t, time.Minute, "metadata searchable", func() (bool, string) {
		got := keys("dept=sales", "year>=2025")
		return got == "kb/doc 0.md", got
	})
	if got := keys("dept=support"); got != "kb/doc 1.md,kb/doc 3.md" && got != "kb/doc 3.md,kb/doc 1.md" {
		t.Fatalf("dept=support: %q", got)
	}
	var before status
	w.get("/v1/status", &before)
	// Same bytes, new metadata: a copy onto itself.
	_, err := w.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(w.bucket), Key: aws.String("kb/doc 3.md"),
		CopySource: aws.String(w.bucket + "/" + url.PathEscape("kb/doc 3.md")), MetadataDirective: types.MetadataDirectiveReplace,
		ContentType: aws.String("text/markdown"), Metadata: map[string]string{"dept": "sales"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the copy's new metadata searchable", func() (bool, string) {
		got := keys("dept=sales")
		return strings.Contains(got, "kb/doc 3.md"), got
	})
	var after status
	w.get("/v1/status", &after)
	if after.TokensEmbedded != before.TokensEmbedded || after.ChunksEmbedded != before.ChunksEmbedded {
		t.Fatalf("the metadata-only change embedded %d tokens", after.TokensEmbedded-before.TokensEmbedded)
	}
	if got := keys("dept=sales"); strings.Contains(got, ".json") {
		t.Fatalf("a sidecar was indexed: %s", got)
	}
}
