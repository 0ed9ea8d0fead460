package main

import (
	"context"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/extract"
	"github.com/freshen-io/freshen/internal/memsource"
)

func TestZZDebugDup(t *testing.T) {
	src := memsource.New("docs")
	if _, err := loadDemoCopies(src, 2); err != nil {
		t.Fatal(err)
	}
	ext := extract.New(extract.Config{})
	chk, _ := chunk.New(chunk.Config{MinTokens: 32, TargetTokens: 80, MaxTokens: 160})
	seen := map[string]string{}
	ctx := context.Background()
	src.List(ctx, "", "", func(o freshen.ObjectInfo) error {
		r, err := src.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ext.Extract(ctx, r, o)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		chs, _ := chk.Split(doc)
		for _, c := range chs {
			if k, ok := seen[c.Text]; ok {
				t.Logf("dup %s / %s: %q", k, o.Key, c.Text)
			}
			seen[c.Text] = o.Key
		}
		return nil
	})
}
