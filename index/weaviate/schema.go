package weaviate

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/freshen-io/freshen"
	"github.com/weaviate/weaviate/entities/models"
)

// Property names.
const (
	propChunkID  = "chunk_id"
	propBucket   = "bucket"
	propKey      = "key"
	propHash     = "hash"
	propOrdinal  = "ordinal"
	propHeadings = "headings"
	propText     = "text"
	propVersion  = "version"
	propKeyHex   = "key_hex"
	propPos      = "pos"
	propFence    = "fence"
	// propMeta holds the chunk's metadata as JSON (search filters it).
	propMeta = "metadata_json"
)

// prop describes a property as freshen creates it and needs it.
type prop struct {
	name, dataType, tokenization string
	filterable, searchable       bool
}

var chunkProps = []prop{
	{propChunkID, "text", "field", true, false},
	{propBucket, "text", "field", true, false},
	{propKey, "text", "field", true, false},
	{propHash, "text", "field", true, false},
	{propOrdinal, "int", "", false, false},
	{propHeadings, "text[]", "word", false, true},
	{propText, "text", "word", false, true},
	{propVersion, "text", "field", true, false},
	{propKeyHex, "text", "field", true, false},
	{propPos, "text", "field", true, false},
	{propMeta, "text", "field", false, false},
}

var fenceProps = []prop{
	{propBucket, "text", "field", true, false},
	{propKey, "text", "field", true, false},
	{propFence, "int", "", false, false},
}

func (p prop) model() *models.Property {
	m := &models.Property{Name: p.name, DataType: []string{p.dataType}, Tokenization: p.tokenization,
		IndexFilterable: &p.filterable}
	if p.tokenization != "" {
		m.IndexSearchable = &p.searchable
	}
	return m
}

func (x *Index) chunkClass() *models.Class {
	c := &models.Class{
		Class:             x.class,
		Description:       fmt.Sprintf("freshen chunks: %d-dimensional vectors, cosine distance (index/weaviate)", x.dim),
		Vectorizer:        "none",
		VectorIndexType:   "hnsw",
		VectorIndexConfig: map[string]any{"distance": "cosine"},
	}
	for _, p := range chunkProps {
		c.Properties = append(c.Properties, p.model())
	}
	return c
}

func (x *Index) fenceClass() *models.Class {
	c := &models.Class{
		Class:             x.fence,
		Description:       fmt.Sprintf("freshen fences of %s: the greatest lease token applied per bucket/key (index/weaviate)", x.class),
		Vectorizer:        "none",
		VectorIndexType:   "hnsw",
		VectorIndexConfig: map[string]any{"skip": true},
	}
	for _, p := range fenceProps {
		c.Properties = append(c.Properties, p.model())
	}
	return c
}

// setUp creates (create) or finds both classes and checks that they are
// what freshen writes.
func (x *Index) setUp(ctx context.Context, create bool) error {
	for _, want := range []*models.Class{x.chunkClass(), x.fenceClass()} {
		got, err := x.getClass(ctx, want.Class)
		if err != nil {
			return err
		}
		if got == nil && create {
			err := x.client.Schema().ClassCreator().WithClass(want).Do(ctx)
			// Another process may have created it meanwhile: check it.
			if err != nil {
				if got, _ = x.getClass(ctx, want.Class); got == nil {
					return classify(fmt.Sprintf("weaviate: create collection %s", want.Class), err)
				}
			} else if got, err = x.getClass(ctx, want.Class); err != nil {
				return err
			}
		}
		if got == nil {
			return freshen.Permanent(fmt.Errorf("weaviate: collection %s does not exist (and create is off): create it, or let freshen create it", want.Class))
		}
		props := chunkProps
		if want.Class == x.fence {
			props = fenceProps
		}
		if want.Class == x.class && create && !slices.ContainsFunc(got.Properties, func(q *models.Property) bool { return q.Name == propMeta }) {
			// A collection made before chunks had metadata gets the property.
			p := chunkProps[slices.IndexFunc(chunkProps, func(p prop) bool { return p.name == propMeta })]
			if err := x.client.Schema().PropertyCreator().WithClassName(x.class).WithProperty(p.model()).Do(ctx); err != nil {
				return classify(fmt.Sprintf("weaviate: add property %s to %s", propMeta, x.class), err)
			}
			if got, err = x.getClass(ctx, want.Class); err != nil {
				return err
			}
		}
		diffs := compare(got, props, want.Class == x.class)
		var dimErr error
		if want.Class == x.class {
			d, err := x.storedDim(ctx, got)
			if err != nil {
				return err
			}
			if d != 0 && d != x.dim {
				dimErr = freshen.ErrDimension
				diffs = append(diffs, fmt.Sprintf("it holds %d-dimensional vectors and the model makes %d (use another collection for this model)", d, x.dim))
			}
		}
		if dimErr != nil {
			return freshen.Permanent(fmt.Errorf("weaviate: collection %s differs from what freshen writes (%w): %s", want.Class, dimErr, strings.Join(diffs, "; ")))
		}
		if len(diffs) > 0 {
			return freshen.Permanent(fmt.Errorf("weaviate: collection %s differs from what freshen writes: %s", want.Class, strings.Join(diffs, "; ")))
		}
	}
	return nil
}

// getClass returns the class, or nil if there is none.
func (x *Index) getClass(ctx context.Context, name string) (*models.Class, error) {
	c, err := x.client.Schema().ClassGetter().WithClassName(name).Do(ctx)
	if status, _, _ := unpack(err); status == 404 {
		return nil, nil
	}
	if err != nil {
		return nil, classify(fmt.Sprintf("weaviate: read collection %s", name), err)
	}
	return c, nil
}

// compare lists how got differs from a class freshen would create.
func compare(got *models.Class, props []prop, vectors bool) []string {
	var diffs []string
	if got.Vectorizer != "" && got.Vectorizer != "none" {
		diffs = append(diffs, fmt.Sprintf("vectorizer is %q, want \"none\"", got.Vectorizer))
	}
	if vectors {
		if len(got.VectorConfig) > 0 {
			names := make([]string, 0, len(got.VectorConfig))
			for n := range got.VectorConfig {
				names = append(names, n)
			}
			slices.Sort(names)
			diffs = append(diffs, fmt.Sprintf("it has named vectors (%s), want the class's single vector", strings.Join(names, ", ")))
		} else {
			if got.VectorIndexType != "hnsw" {
				diffs = append(diffs, fmt.Sprintf("vector index is %q, want \"hnsw\"", got.VectorIndexType))
			}
			cfg, _ := got.VectorIndexConfig.(map[string]any)
			if d, _ := cfg["distance"].(string); d != "cosine" {
				diffs = append(diffs, fmt.Sprintf("distance is %q, want \"cosine\"", d))
			}
			if skip, _ := cfg["skip"].(bool); skip {
				diffs = append(diffs, "its vector index is skipped (skip: true)")
			}
		}
	}
	for _, p := range props {
		i := slices.IndexFunc(got.Properties, func(q *models.Property) bool { return q.Name == p.name })
		if i < 0 {
			diffs = append(diffs, fmt.Sprintf("property %s is missing (want %s)", p.name, p.dataType))
			continue
		}
		q := got.Properties[i]
		if dt := strings.Join(q.DataType, ","); dt != p.dataType {
			diffs = append(diffs, fmt.Sprintf("property %s is %s, want %s", p.name, dt, p.dataType))
			continue
		}
		if p.filterable && p.tokenization == "field" && q.Tokenization != "field" {
			diffs = append(diffs, fmt.Sprintf("property %s has tokenization %q, want \"field\"", p.name, q.Tokenization))
		}
		if p.filterable && q.IndexFilterable != nil && !*q.IndexFilterable {
			diffs = append(diffs, fmt.Sprintf("property %s is not filterable (indexFilterable false)", p.name))
		}
	}
	return diffs
}

var dimRE = regexp.MustCompile(`(\d+)-dimensional`)

// storedDim is the length of the class's vectors: a stored object's, else
// the one freshen wrote into the description, else 0 (unknown: an empty
// class made by someone else).
func (x *Index) storedDim(ctx context.Context, c *models.Class) (int, error) {
	objs, err := x.client.Data().ObjectsGetter().WithClassName(c.Class).WithLimit(1).WithVector().Do(ctx)
	if err != nil {
		return 0, classify(fmt.Sprintf("weaviate: read a vector of %s", c.Class), err)
	}
	if len(objs) > 0 && len(objs[0].Vector) > 0 {
		return len(objs[0].Vector), nil
	}
	if m := dimRE.FindStringSubmatch(c.Description); m != nil && strings.HasPrefix(c.Description, "freshen chunks") {
		d, _ := strconv.Atoi(m[1])
		return d, nil
	}
	return 0, nil
}
