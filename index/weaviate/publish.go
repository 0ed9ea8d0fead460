package weaviate

import (
	"context"
	"fmt"

	"github.com/weaviate/weaviate-go-client/v5/weaviate/alias"

	"github.com/freshen-io/freshen"
)

var (
	_ freshen.Publisher = (*Index)(nil)
	_ freshen.Dropper   = (*Index)(nil)
)

// Publish implements freshen.Publisher with a collection alias:
// applications that query the alias move to this collection at once.
func (x *Index) Publish(ctx context.Context, name string, replace bool) error {
	all, err := x.client.Alias().Getter().Do(ctx)
	if err != nil {
		return classify("weaviate: aliases", err)
	}
	a := &alias.Alias{Alias: name, Class: x.class}
	for _, got := range all {
		if got.Alias != name {
			continue
		}
		if !replace || got.Class == x.class {
			return nil
		}
		if err := x.client.Alias().AliasUpdater().WithAlias(a).Do(ctx); err != nil {
			return classify(fmt.Sprintf("weaviate: point alias %s at %s", name, x.class), err)
		}
		return nil
	}
	if err := x.client.Alias().AliasCreator().WithAlias(a).Do(ctx); err != nil {
		return classify(fmt.Sprintf("weaviate: create alias %s for %s", name, x.class), err)
	}
	return nil
}

// Drop implements freshen.Dropper: the collection and its fences.
func (x *Index) Drop(ctx context.Context) error {
	for _, class := range []string{x.class, x.fence} {
		if err := x.client.Schema().ClassDeleter().WithClassName(class).Do(ctx); err != nil {
			return classify("weaviate: drop "+class, err)
		}
	}
	return nil
}
