package weaviate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/freshen-io/freshen/index/weaviate"
	"github.com/freshen-io/freshen/internal/testenv"
)

// TestPublishAndDrop: the alias follows Publish with replace and is only
// created without it; Drop removes the collection and its fences.
func TestPublishAndDrop(t *testing.T) {
	ctx := context.Background()
	url := testenv.SharedWeaviate(t).URL
	a, b := open(t, weaviate.Config{}), open(t, weaviate.Config{})
	name := testenv.UniqueCollection("Live")
	target := func() string {
		t.Helper()
		resp, err := http.Get(url + "/v1/aliases/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Class string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
			t.Fatalf("alias %s: %d %v", name, resp.StatusCode, err)
		}
		return got.Class
	}
	if err := a.Publish(ctx, name, false); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, name, false); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != a.Collection() {
		t.Fatalf("without replace the alias moved to %s", got)
	}
	if err := b.Publish(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != b.Collection() {
		t.Fatalf("after replace the alias names %s, want %s", got, b.Collection())
	}
	if err := a.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{a.Collection(), a.Collection() + "Fence"} {
		resp, err := http.Get(url + "/v1/schema/" + class)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s after Drop: %d", class, resp.StatusCode)
		}
	}
}
