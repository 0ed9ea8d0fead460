package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/chunk"
	"github.com/freshen-io/freshen/internal/config"
)

// A generation is one complete index of the bucket: an embedder, a
// chunker and an index target, with its own ledger catalog. One
// generation serves search; a second one may be building beside it (a
// migration to another model or other chunk settings) or, after a
// switch, kept as the old one for a grace period so that a rollback is
// instant. Both are kept up to date with every change, and search only
// ever reads the serving one: it never mixes vectors of two models.
//
// The registry of generations lives in the configured (root) ledger, so
// that every process sharing it agrees. Generation 1 uses the root
// ledger and the configured index target, exactly as freshen did before
// generations existed; generation N > 1 has its own ledger (data-dir/gen-N
// for SQLite, schema <schema>_gN for PostgreSQL) and its own index (the
// embedded index in data-dir/gen-N, a pgvector table or a Weaviate
// collection named at `migrate start`).

// GenState is a generation's role.
type GenState string

const (
	// GenServing answers search.
	GenServing GenState = "serving"
	// GenBuilding is being built beside the serving one (migrate start).
	GenBuilding GenState = "building"
	// GenRetired served before the last switch; it is kept up to date
	// until DropAfter so that a rollback is instant.
	GenRetired GenState = "retired"
	// GenDropped is no longer maintained; its data is deleted by the next
	// process that writes (run or sync), then it leaves the registry.
	GenDropped GenState = "dropped"
)

// Spec is what makes a generation: the configuration sections that
// decide its vectors and where they are stored.
type Spec struct {
	Embedder config.EmbedderConfig `json:"embedder"`
	Chunk    chunk.Config          `json:"chunk"`
	Index    config.IndexConfig    `json:"index"`
}

// Generation is one entry of the registry.
type Generation struct {
	ID      int       `json:"id"`
	State   GenState  `json:"state"`
	Spec    Spec      `json:"spec"`
	Created time.Time `json:"created"`
	// Dim is the length of its vectors, recorded when a process first
	// opens it (dropping its index needs it).
	Dim int `json:"dim,omitempty"`
	// Switched is when the generation last started or stopped serving.
	Switched time.Time `json:"switched,omitzero"`
	// DropAfter is when a retired generation is dropped.
	DropAfter time.Time `json:"drop_after,omitzero"`
}

// Registry is the list of generations, as read from the root ledger.
type Registry struct {
	Gens []Generation `json:"generations"`
	// Next is the lowest ID never used: a dropped generation's ID (its
	// directory, schema, table) is never used again.
	Next int `json:"next"`
	// raw is the stored text it was read from: a change is written only
	// if nobody changed it since (compare and swap).
	raw string
	ok  bool
}

// registrySetting names the registry in the root ledger's settings.
const registrySetting = "generations"

// Serving is the generation that answers search.
func (r Registry) Serving() Generation {
	for _, g := range r.Gens {
		if g.State == GenServing {
			return g
		}
	}
	return Generation{}
}

// Other is the live generation beside the serving one (building or
// retired); ok is false when there is none.
func (r Registry) Other() (Generation, bool) {
	for _, g := range r.Gens {
		if g.State == GenBuilding || g.State == GenRetired {
			return g, true
		}
	}
	return Generation{}, false
}

// Shape names the live generations and their roles: processes reopen
// their generations when it changes, and only then.
func (r Registry) Shape() string {
	var parts []string
	for _, g := range r.Gens {
		if g.State != GenDropped {
			parts = append(parts, fmt.Sprintf("%d:%s", g.ID, g.State))
		}
	}
	return strings.Join(parts, ",")
}

func (r Registry) nextID() int {
	id := max(r.Next, 1)
	for _, g := range r.Gens {
		id = max(id, g.ID+1)
	}
	return id
}

// settings is the root ledger's settings.
func settings(led freshen.Ledger) (freshen.Settings, error) {
	s, ok := led.(freshen.Settings)
	if !ok {
		return nil, fmt.Errorf("the %T ledger cannot keep index generations", led)
	}
	return s, nil
}

// ReadRegistry reads the registry from the root ledger (empty when no
// generation was recorded yet).
func ReadRegistry(ctx context.Context, root freshen.Ledger) (Registry, error) {
	s, err := settings(root)
	if err != nil {
		return Registry{}, err
	}
	v, ok, err := s.Setting(ctx, registrySetting)
	if err != nil || !ok {
		return Registry{}, err
	}
	var r Registry
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return Registry{}, fmt.Errorf("the generation registry is unreadable: %w", err)
	}
	r.raw, r.ok = v, true
	return r, nil
}

// errRaced reports that another process changed the registry first.
var errRaced = errors.New("the generation registry changed meanwhile")

// UpdateRegistry applies change to the current registry and stores the
// result, retrying when another process changed it meanwhile. change may
// return an error to refuse (nothing is written).
func UpdateRegistry(ctx context.Context, root freshen.Ledger, change func(*Registry) error) (Registry, error) {
	s, err := settings(root)
	if err != nil {
		return Registry{}, err
	}
	for range 20 {
		r, err := ReadRegistry(ctx, root)
		if err != nil {
			return r, err
		}
		if err := change(&r); err != nil {
			return r, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return r, err
		}
		won, err := s.SwapSetting(ctx, registrySetting, r.raw, r.ok, string(b))
		if err != nil {
			return r, err
		}
		if won {
			r.raw, r.ok = string(b), true
			return r, nil
		}
	}
	return Registry{}, errRaced
}

// specOf is the generation-defining part of a configuration.
func specOf(cfg config.Config) Spec {
	return Spec{Embedder: cfg.Embedder, Chunk: cfg.Chunk, Index: cfg.Index}
}

// sameVectors reports whether two specs make the same vectors: same
// embedder (the provider, model and vector length) and same chunking.
// Tuning (rate limits, timeouts, batch sizes, prices) does not count.
func sameVectors(a, b Spec) bool {
	ea, eb := a.Embedder, b.Embedder
	return ea.Type == eb.Type && ea.Model == eb.Model && ea.Dimensions == eb.Dimensions && ea.Dim == eb.Dim &&
		strings.TrimRight(ea.BaseURL, "/") == strings.TrimRight(eb.BaseURL, "/") && ea.Truncate == eb.Truncate &&
		a.Chunk.WithDefaults() == b.Chunk.WithDefaults()
}

// sameTarget reports whether two specs store vectors in the same place.
func sameTarget(a, b Spec) bool {
	ia, ib := a.Index, b.Index
	if ia.Type != ib.Type {
		return false
	}
	switch ia.Type {
	case "pgvector":
		return pgTable(ia) == pgTable(ib) && ia.DSN == ib.DSN
	case "weaviate":
		return weaviateCollection(ia) == weaviateCollection(ib) && strings.TrimRight(ia.URL, "/") == strings.TrimRight(ib.URL, "/")
	}
	return true
}

func pgTable(ix config.IndexConfig) string {
	if ix.Table == "" {
		return "freshen_chunks"
	}
	return ix.Table
}

func weaviateCollection(ix config.IndexConfig) string {
	if ix.Collection == "" {
		return "FreshenChunks"
	}
	return ix.Collection
}

// configFor is the configuration generation g runs with. The file's own
// embedder, chunk and index sections are used when they make g's vectors
// (so tuning such as rate limits and DSNs applies); otherwise the spec g
// was started with. Generations after the first keep their own ledger
// and data directory.
func configFor(file config.Config, g Generation) config.Config {
	c := file
	spec := g.Spec
	if sameVectors(specOf(file), spec) && file.Index.Type == spec.Index.Type {
		spec.Embedder, spec.Chunk = file.Embedder, file.Chunk
		table, collection := spec.Index.Table, spec.Index.Collection
		spec.Index = file.Index
		spec.Index.Table, spec.Index.Collection = table, collection
	}
	c.Embedder, c.Chunk, c.Index = spec.Embedder, spec.Chunk, spec.Index
	if g.ID > 1 {
		c.DataDir = filepath.Join(file.DataDir, fmt.Sprintf("gen-%d", g.ID))
		schema := file.Ledger.Schema
		if schema == "" {
			schema = "freshen"
		}
		c.Ledger.Schema = fmt.Sprintf("%s_g%d", schema, g.ID)
	}
	return c
}

// newGeneration is the spec of a generation to build from the
// configuration next, beside serving: where it differs from serving only
// in its vectors, its index gets a name of its own.
func newGeneration(next config.Config, serving Generation, id int) Generation {
	spec := specOf(next)
	if sameTarget(spec, serving.Spec) {
		switch spec.Index.Type {
		case "pgvector":
			spec.Index.Table = fmt.Sprintf("%s_g%d", strings.TrimSuffix(pgTable(serving.Spec.Index), fmt.Sprintf("_g%d", serving.ID)), id)
		case "weaviate":
			spec.Index.Collection = fmt.Sprintf("%sG%d", strings.TrimSuffix(weaviateCollection(serving.Spec.Index), fmt.Sprintf("G%d", serving.ID)), id)
		}
	}
	return Generation{ID: id, State: GenBuilding, Spec: spec, Created: time.Now().UTC()}
}

// describeChange says in words what differs between two specs.
func describeChange(from, to Spec) []string {
	var out []string
	ef, et := from.Embedder, to.Embedder
	if ef.Type != et.Type || ef.Model != et.Model || ef.BaseURL != et.BaseURL {
		out = append(out, fmt.Sprintf("embedder: %s %s -> %s %s", ef.Type, orDefault(ef.Model), et.Type, orDefault(et.Model)))
	}
	if ef.Dimensions != et.Dimensions || ef.Dim != et.Dim {
		out = append(out, fmt.Sprintf("dimensions: %d -> %d", max(ef.Dimensions, ef.Dim), max(et.Dimensions, et.Dim)))
	}
	if from.Chunk.WithDefaults() != to.Chunk.WithDefaults() {
		f, t := from.Chunk.WithDefaults(), to.Chunk.WithDefaults()
		out = append(out, fmt.Sprintf("chunking: min/target/max tokens %d/%d/%d -> %d/%d/%d, hard heading level %d -> %d, overlap %d -> %d",
			f.MinTokens, f.TargetTokens, f.MaxTokens, t.MinTokens, t.TargetTokens, t.MaxTokens, f.HardHeadingLevel, t.HardHeadingLevel, f.OverlapBlocks, t.OverlapBlocks))
	}
	if !sameTarget(from, to) {
		out = append(out, fmt.Sprintf("index: %s -> %s", target(from.Index), target(to.Index)))
	}
	return out
}

func orDefault(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

// target names where a generation's vectors are, for people.
func target(ix config.IndexConfig) string {
	switch ix.Type {
	case "pgvector":
		return "pgvector table " + pgTable(ix)
	case "weaviate":
		return "Weaviate collection " + weaviateCollection(ix)
	}
	return "embedded index"
}

// Target names where generation g's vectors are.
func (g Generation) Target() string {
	if g.Spec.Index.Type == "embedded" || g.Spec.Index.Type == "" {
		if g.ID > 1 {
			return fmt.Sprintf("embedded index in gen-%d/", g.ID)
		}
		return "embedded index"
	}
	return target(g.Spec.Index)
}

// adoptRegistry records the configuration as generation 1 when the
// ledger has no registry yet (a new deployment, or one made before
// generations existed: its index is generation 1 as it is).
func adoptRegistry(ctx context.Context, root freshen.Ledger, file config.Config) (Registry, error) {
	return UpdateRegistry(ctx, root, func(r *Registry) error {
		if len(r.Gens) == 0 {
			r.Gens = []Generation{{ID: 1, State: GenServing, Spec: specOf(file), Created: time.Now().UTC()}}
		}
		return nil
	})
}

// liveIDs lists the generations that processes maintain.
func (r Registry) liveIDs() []int {
	var ids []int
	for _, g := range r.Gens {
		if g.State != GenDropped {
			ids = append(ids, g.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
