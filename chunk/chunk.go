package chunk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/freshen-io/freshen"
)

// revision names the algorithm: normalization, EstimateTokens, the cut
// rules and the rendering of Text. Bump it with any change that can alter
// Split's output for some input, so that every ChunkHash changes with it.
const revision = "cdc-v1"

// Defaults, used for the zero value of each Config field.
const (
	DefaultMinTokens        = 64
	DefaultTargetTokens     = 200
	DefaultMaxTokens        = 400
	DefaultHardHeadingLevel = 3
)

// Config sets the chunk budgets, in EstimateTokens units. A zero field
// takes its default. Every field is part of Version, so changing one
// re-chunks (and re-embeds) every object, once, explicitly.
type Config struct {
	// MinTokens is the least content between two soft boundaries. A chunk
	// is smaller only when its whole section is, or right after a cut
	// forced by MaxTokens.
	MinTokens int `yaml:"min-tokens"`
	// TargetTokens is the average chunk size aimed for on prose.
	TargetTokens int `yaml:"target-tokens"`
	// MaxTokens bounds every chunk, overlap included. It may exceed the
	// embedding model's window when the embedder windows long inputs
	// itself (the built-in model does); for a provider that rejects long
	// inputs it must stay below that provider's limit.
	MaxTokens int `yaml:"max-tokens"`
	// HardHeadingLevel: a heading of this level or a shallower one (1 is
	// the top level) always starts a new chunk. Deeper headings stay inside
	// chunks, though a chunk preferably ends before one.
	HardHeadingLevel int `yaml:"hard-heading-level"`
	// OverlapBlocks prefixes each chunk's text with up to this many blocks
	// from the end of the previous chunk of the same section, as far as
	// MaxTokens allows. 0, the default, disables overlap. With overlap an
	// edit in the last blocks of a chunk also changes the next chunk.
	OverlapBlocks int `yaml:"overlap-blocks"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MinTokens == 0 {
		c.MinTokens = DefaultMinTokens
	}
	if c.TargetTokens == 0 {
		c.TargetTokens = DefaultTargetTokens
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.HardHeadingLevel == 0 {
		c.HardHeadingLevel = DefaultHardHeadingLevel
	}
	return c
}

// Validate reports every mistake in the effective configuration (c with
// defaults applied), joined, each saying what to change.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("chunk: config: "+format, args...))
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"min-tokens", c.MinTokens},
		{"target-tokens", c.TargetTokens},
		{"max-tokens", c.MaxTokens},
		{"hard-heading-level", c.HardHeadingLevel},
		{"overlap-blocks", c.OverlapBlocks},
	} {
		if f.v < 0 {
			bad("%s is %d; it cannot be negative (0 means the default)", f.name, f.v)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if c.MinTokens >= c.TargetTokens {
		bad("min-tokens (%d) must be below target-tokens (%d)", c.MinTokens, c.TargetTokens)
	}
	if c.TargetTokens >= c.MaxTokens {
		bad("target-tokens (%d) must be below max-tokens (%d)", c.TargetTokens, c.MaxTokens)
	}
	if len(errs) == 0 && c.MaxTokens-c.MinTokens < 2*(c.TargetTokens-c.MinTokens) {
		bad("max-tokens (%d) leaves too little room above target-tokens (%d): with max-min < 2*(target-min) "+
			"most boundaries are forced by size instead of chosen by content, and an insert moves the boundaries "+
			"after it; raise max-tokens to at least %d or lower target-tokens",
			c.MaxTokens, c.TargetTokens, 2*c.TargetTokens-c.MinTokens)
	}
	return errors.Join(errs...)
}

// Chunker implements freshen.Chunker with content-defined boundaries. It
// holds no mutable state: one Chunker is safe for concurrent use.
type Chunker struct {
	cfg     Config
	version string
	// spread is the expected number of tokens between reaching MinTokens
	// and a soft cut: TargetTokens - MinTokens.
	spread int
	// step is the cut threshold per token: a unit of t tokens is a soft
	// boundary when its hash, as a fraction of 2^64, is below t/spread.
	step uint64
	// wordRunes is the longest piece an unspaced word is split into, half
	// of MaxTokens: a rune never estimates above one token, so such a
	// piece always fits.
	wordRunes int
}

var _ freshen.Chunker = (*Chunker)(nil)

// New returns a Chunker for cfg (zero fields take their defaults), or the
// error from cfg.Validate.
func New(cfg Config) (*Chunker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	spread := cfg.TargetTokens - cfg.MinTokens
	return &Chunker{
		cfg: cfg,
		version: fmt.Sprintf("%s:min=%d,target=%d,max=%d,hard=%d,overlap=%d", revision,
			cfg.MinTokens, cfg.TargetTokens, cfg.MaxTokens, cfg.HardHeadingLevel, cfg.OverlapBlocks),
		spread:    spread,
		step:      math.MaxUint64 / uint64(spread),
		wordRunes: max(1, cfg.MaxTokens/2),
	}, nil
}

// Config returns the effective configuration, defaults applied.
func (c *Chunker) Config() Config { return c.cfg }

// Version names the algorithm revision and every setting, for example
// "cdc-v1:min=64,target=200,max=400,hard=3,overlap=0". It is part of every
// ChunkHash.
func (c *Chunker) Version() string { return c.version }

// Split cuts doc into chunks, in document order, with Ordinal counting from
// 0. A nil or empty document (or one whose blocks are all blank) yields no
// chunks and no error. Split never fails: invalid UTF-8 is replaced with
// U+FFFD, unknown block kinds are treated as paragraphs and heading levels
// below 1 as 1. It does not modify doc and is safe for concurrent use;
// the returned chunks share no memory with doc or with other calls.
//
// Every chunk's Tokens is at most MaxTokens. Text is the normalized text of
// the chunk's blocks joined by "\n\n" (a block split for size is joined
// back by its own separators), preceded by the overlap, if any; a chunk
// that opens a section begins with that section's heading. Headings is the
// heading trail where the chunk's own text starts, outermost first,
// including the heading the chunk opens with.
func (c *Chunker) Split(doc *freshen.Document) ([]freshen.Chunk, error) {
	if doc == nil {
		return nil, nil
	}
	us, trails, spans := c.layout(doc.Blocks)
	if len(spans) == 0 {
		return nil, nil
	}
	out := make([]freshen.Chunk, len(spans))
	for i, sp := range spans {
		text := render(us[sp.from : sp.end+1])
		out[i] = freshen.Chunk{
			Hash:     freshen.HashChunk(c.version, text),
			Text:     text,
			Headings: slices.Clone(trails[us[sp.start].trail]),
			Ordinal:  i,
			Tokens:   EstimateTokens(text),
		}
		// The pages (slides) its own blocks are on, in paged formats.
		for _, u := range us[sp.start : sp.end+1] {
			if pg := doc.Blocks[u.block].Page; pg > 0 {
				if out[i].Page == 0 || pg < out[i].Page {
					out[i].Page = pg
				}
				out[i].PageEnd = max(out[i].PageEnd, pg)
			}
		}
	}
	return out, nil
}

// A span is one chunk: units[from:end+1] make its text, units[start:end+1]
// are its own (from < start when it begins with overlap).
type span struct {
	from, start, end int
	forced           bool // ends at a forced cut, for tests
}

// layout turns blocks into units and decides the chunks over them.
func (c *Chunker) layout(blocks []freshen.Block) ([]unit, [][]string, []span) {
	us, trails := c.units(blocks)
	var spans []span
	for a := 0; a < len(us); {
		b := a + 1
		for b < len(us) && us[b].flags&hardStart == 0 {
			b++
		}
		spans = c.section(spans, us[a:b], a)
		a = b
	}
	return us, trails, spans
}

// A unit is what boundaries fall between: a block, or a piece of a block
// larger than MaxTokens.
type unit struct {
	text  string
	join  string // separator from the previous unit inside a chunk's text
	tok   int
	hash  uint64 // of text alone: the cut decision depends on nothing else
	trail int    // index of the heading trail in force at this unit
	block int    // index of the block in the document, for tests
	flags uint8
}

const (
	headingStart uint8 = 1 << iota // first unit of a heading block
	hardStart                      // first unit of a heading at or above HardHeadingLevel
	noCut                          // last unit of a heading: a chunk never ends here
)

func (c *Chunker) units(blocks []freshen.Block) ([]unit, [][]string) {
	type heading struct {
		level int
		text  string
	}
	var (
		us     = make([]unit, 0, len(blocks))
		trails = [][]string{nil}
		stack  []heading
		trail  int
		ps     []piece
	)
	for bi, blk := range blocks {
		code := blk.Kind == freshen.BlockCode
		var text string
		if code {
			text = normalizeCode(blk.Text)
		} else {
			text = normalizeProse(blk.Text)
		}
		if text == "" {
			continue // a blank block, even a heading, is no boundary
		}
		var flags uint8
		isHeading := blk.Kind == freshen.BlockHeading
		if isHeading {
			level := max(1, blk.Level)
			for len(stack) > 0 && stack[len(stack)-1].level >= level {
				stack = stack[:len(stack)-1]
			}
			stack = append(stack, heading{level, text})
			t := make([]string, len(stack))
			for i, h := range stack {
				t[i] = h.text
			}
			trails = append(trails, t)
			trail = len(trails) - 1
			flags = headingStart
			if level <= c.cfg.HardHeadingLevel {
				flags |= hardStart
			}
		}
		ps = c.pieces(ps[:0], "\n\n", text, code, 0)
		for k, p := range ps {
			if p.text == "" {
				continue
			}
			u := unit{text: p.text, join: p.join, tok: max(1, p.tok), hash: hash64(p.text), trail: trail, block: bi}
			if k == 0 {
				u.flags = flags
			}
			if isHeading && k == len(ps)-1 {
				u.flags |= noCut
			}
			us = append(us, u)
		}
	}
	return us, trails
}

// pieces appends text to dst as one piece if it fits MaxTokens, else cut
// at the coarsest separator that exists: sentences (lines in code), then
// words, then content-defined pieces of a word.
func (c *Chunker) pieces(dst []piece, join, text string, code bool, level int) []piece {
	if tok := EstimateTokens(text); level > 2 || tok <= c.cfg.MaxTokens {
		return append(dst, piece{join, text, tok})
	}
	var sub []piece
	switch {
	case level == 0 && code:
		sub = splitRuns(text, isNewline)
	case level == 0:
		sub = splitSentences(text)
	case level == 1 && code:
		sub = splitRuns(text, isBlank)
	case level == 1:
		sub = splitRuns(text, func(r rune) bool { return r == ' ' })
	default:
		sub = splitWord(text, c.wordRunes)
	}
	for k, p := range sub {
		if k == 0 {
			p.join = join
		}
		dst = c.pieces(dst, p.join, p.text, code, level+1)
	}
	return dst
}

func hash64(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// section decides the chunks of one section, the units from a hard
// heading to the next, which start at offset in the document's units.
func (c *Chunker) section(spans []span, us []unit, offset int) []span {
	soft := c.softCuts(us)
	prev := -1 // first unit of the previous chunk
	for s := 0; s < len(us); {
		e, own := c.cut(us, soft, s)
		from := s
		if prev >= 0 {
			budget := c.cfg.MaxTokens - own
			for k := 0; k < c.cfg.OverlapBlocks && from > prev && us[from-1].tok <= budget; k++ {
				from--
				budget -= us[from].tok
			}
		}
		spans = append(spans, span{from + offset, s + offset, e + offset, !soft[e] && e < len(us)-1})
		prev, s = s, e+1
	}
	return spans
}

// softCuts marks the units after which a chunk ends by content. A unit is
// a candidate when it meets the content condition (see meets) or is
// followed by a heading; it never is when it ends a heading. A candidate
// is a soft cut when at least MinTokens follow it up to the next candidate
// or the end of the section, and at least MinTokens precede it since the
// start of the section.
//
// MinTokens is measured to the next candidate, taken or not, and not from
// the start of the chunk, on purpose. Then whether a unit is a cut depends
// only on the content up to the next candidate after it, so an edit can
// change cuts only at the edited unit and at the candidate before it, and
// every boundary after it stays where it was. Measured from the start of
// the chunk, a new cut just before an old one would suppress the old one,
// the chunk would run on to the next candidate, and so on: a cascade.
// Looking ahead rather than back also means that of two candidates too
// close together the first is dropped, so the small remainder stays in
// the chunk that had to take the edit anyway, rather than joining the next
// chunk, which may be full. Only near the start of a section do cuts
// depend on what lies before them. The cost: a chunk can run past several
// close candidates; it is never shorter than MinTokens unless its section
// is, or it follows a forced cut.
func (c *Chunker) softCuts(us []unit) []bool {
	soft := make([]bool, len(us))
	ahead := 0 // tokens after unit i up to the next candidate, included
	for i := len(us) - 1; i >= 0; i-- {
		u := &us[i]
		cand := u.flags&noCut == 0 &&
			(c.meets(u) || (i+1 < len(us) && us[i+1].flags&headingStart != 0))
		soft[i] = cand && ahead >= c.cfg.MinTokens
		if cand {
			ahead = 0
		}
		ahead += u.tok
	}
	for i, since := 0, 0; i < len(us) && since < c.cfg.MinTokens; i++ {
		since += us[i].tok
		if since < c.cfg.MinTokens {
			soft[i] = false
		}
	}
	return soft
}

// cut returns the last unit of the chunk that starts at us[s], and the
// chunk's size: at the first soft cut, or at the end of the section, or,
// when the next unit would exceed MaxTokens, at a forced cut. A forced cut
// goes after the unit (past MinTokens from s) whose hash came closest to
// meeting the content condition. Because that choice is a minimum over
// content rather than the place where the budget ran out, an edit before
// it rarely changes it, and the chunks after it are found again. Without
// such a unit, it goes before the unit that does not fit (and before any
// heading just ahead of it).
func (c *Chunker) cut(us []unit, soft []bool, s int) (end, tokens int) {
	acc, best, bestAcc := 0, -1, 0
	for i := s; i < len(us); i++ {
		u := &us[i]
		if i > s && acc+u.tok > c.cfg.MaxTokens {
			if best >= 0 {
				return best, bestAcc
			}
			e := i - 1
			for e > s && us[e].flags&noCut != 0 {
				acc -= us[e].tok
				e--
			}
			return e, acc
		}
		acc += u.tok
		if soft[i] {
			return i, acc
		}
		if u.flags&noCut == 0 && acc >= c.cfg.MinTokens && (best < 0 || closer(u, &us[best])) {
			best, bestAcc = i, acc
		}
	}
	return len(us) - 1, acc
}

// meets is the content condition for a soft cut: the unit's hash, read as
// a fraction of 2^64, is below tok/spread. The chance of a cut is thus
// proportional to the unit's size, so chunks average TargetTokens whatever
// the mix of short list items and long paragraphs, and a unit of spread
// tokens or more always ends its chunk. It looks at the unit alone, never
// at the chunk's position or length.
func (c *Chunker) meets(u *unit) bool {
	return u.tok >= c.spread || u.hash < uint64(u.tok)*c.step
}

// closer reports whether a is nearer to meeting the condition than b,
// comparing hash/tok exactly in 128 bits. Ties keep the earlier unit.
func closer(a, b *unit) bool {
	ah, al := bits.Mul64(a.hash, uint64(b.tok))
	bh, bl := bits.Mul64(b.hash, uint64(a.tok))
	return ah < bh || ah == bh && al < bl
}

func render(us []unit) string {
	n := 0
	for _, u := range us {
		n += len(u.join) + len(u.text)
	}
	var b strings.Builder
	b.Grow(n)
	for i, u := range us {
		if i > 0 {
			b.WriteString(u.join)
		}
		b.WriteString(u.text)
	}
	return b.String()
}
