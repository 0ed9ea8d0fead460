package chunk

import (
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/freshen-io/freshen"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

type testBundle struct {
	cfg Config // effective, defaults applied
}

func setup(t testing.TB, cfg Config) (*Chunker, *testBundle) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c, &testBundle{cfg: c.Config()}
}

func mustSplit(t testing.TB, c *Chunker, doc *freshen.Document) []freshen.Chunk {
	t.Helper()
	chunks, err := c.Split(doc)
	if err != nil {
		t.Fatalf("Split: %v", err)
	}
	return chunks
}

// prose is deterministic filler text that does not depend on math/rand,
// whose streams may change between Go releases: golden files must not.
func prose(seed, words int) string {
	x := uint32(seed)*2654435761 + 1
	var b strings.Builder
	for i := 0; i < words; {
		n := min(words-i, 6+int(x%13))
		for k := 0; k < n; k++ {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			w := goldenWords[x%uint32(len(goldenWords))]
			if k == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(w)
		}
		b.WriteByte('.')
		i += n
	}
	return b.String()
}

var goldenWords = strings.Fields(`the a of and to in is that for it as with on be by this are from or
at an not have which but they index vector chunk document section object bucket prefix event
queue worker ledger embedding model cache hash boundary paragraph heading version replica storage
request latency budget window token sentence content change delete insert reconcile listing`)

func h(level int, text string) freshen.Block {
	return freshen.Block{Kind: freshen.BlockHeading, Level: level, Text: text}
}

func p(text string) freshen.Block { return freshen.Block{Kind: freshen.BlockParagraph, Text: text} }

func li(text string) freshen.Block { return freshen.Block{Kind: freshen.BlockListItem, Text: text} }

func code(text string) freshen.Block { return freshen.Block{Kind: freshen.BlockCode, Text: text} }

func row(text string) freshen.Block { return freshen.Block{Kind: freshen.BlockTableRow, Text: text} }

// guide is a Markdown-like manual: headings at levels 1 to 4, prose of
// varied length, code, lists, a table, a quote, JSON records, CJK text,
// decomposed Unicode, messy whitespace and blank blocks.
func guide() *freshen.Document {
	return &freshen.Document{Title: "freshen guide", Blocks: []freshen.Block{
		h(1, "freshen"),
		p(prose(1, 60)),
		p("  It keeps a vector index\n\tequal to   the chunks of every object.  "),
		h(2, "Install"),
		p(prose(2, 40)),
		code("go install github.com/freshen-io/freshen/cmd/freshen@latest\r\nfreshen version   \r\n"),
		li("Linux and macOS on amd64 and arm64."),
		li("Windows on amd64."),
		li(prose(3, 25)),
		li("No cgo: the SQLite driver is pure Go."),
		h(3, "From source"),
		p(prose(4, 120)),
		code("git clone https://example.invalid/freshen.git\ncd freshen\n\n\tgo build ./cmd/freshen\n"),
		h(4, "Windows"),
		p(prose(5, 90)),
		p(prose(6, 30)),
		h(2, "Configure"),
		p(prose(7, 150)),
		row("| key | default | meaning |"),
		row("| min-tokens | 64 | no soft cut below this |"),
		row("| target-tokens | 200 | average chunk |"),
		row("| max-tokens | 400 | hard limit |"),
		row("| hard-heading-level | 3 | always cut before these headings |"),
		row("| overlap-blocks | 0 | blocks repeated from the previous chunk |"),
		freshen.Block{Kind: freshen.BlockQuote, Text: prose(8, 45)},
		h(3, "Budgets"),
		p(prose(9, 200)),
		p(prose(10, 35)),
		li(prose(11, 12)),
		li(prose(12, 18)),
		li(prose(13, 9)),
		h(5, "A deep note"),
		p(prose(14, 70)),
		h(2, "   "), // blank: ignored
		h(2, "Records"),
		freshen.Block{Kind: freshen.BlockRecord, Text: `{"id": 1, "name": "alpha", "tags": ["a", "b"]}`},
		freshen.Block{Kind: freshen.BlockRecord, Text: `{"id": 2, "name": "beta",  "tags": []}`},
		freshen.Block{Kind: freshen.BlockRecord, Text: `{"id": 3, "name": "gamma", "note": "` + prose(15, 50) + `"}`},
		h(2, "Unicode"),
		p("Cafe\u0301 and caf\u00e9 are the same after NFC."),
		p("日本語の文章は空白で単語を区切らない。チャンクの大きさは文字数で見積もる。"),
		p(" \n\t "), // blank: ignored
		h(0, "Appendix"),
		p(prose(16, 80)),
	}}
}

// hugeParagraph has one paragraph of about 3000 words between two short
// ones, so it must be cut at sentences.
func hugeParagraph() *freshen.Document {
	return &freshen.Document{Blocks: []freshen.Block{
		h(1, "A very long paragraph"),
		p(prose(20, 30)),
		p(prose(21, 3000)),
		p(prose(22, 30)),
	}}
}

// enormousWords has text without any separator: a 6000-character base64
// blob and 1500 CJK characters without punctuation.
func enormousWords() *freshen.Document {
	var blob []byte
	for s := sha256.Sum256([]byte("blob")); len(blob) < 4500; s = sha256.Sum256(s[:]) {
		blob = append(blob, s[:]...)
	}
	kanji := []rune("内容定義分割文書索引変更検出埋込計算費用局所性見出段落表行")
	var cjk []rune
	for x := uint32(1); len(cjk) < 1500; {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		cjk = append(cjk, kanji[x%uint32(len(kanji))])
	}
	return &freshen.Document{Blocks: []freshen.Block{
		h(1, "Blobs"),
		p("data:" + base64.StdEncoding.EncodeToString(blob)),
		p(string(cjk)),
	}}
}

// hugeCode is one code block of 300 lines.
func hugeCode() *freshen.Document {
	var b strings.Builder
	for i := range 300 {
		fmt.Fprintf(&b, "%sx%d := f(%q, %d) // %s\n", strings.Repeat("\t", i%3), i, goldenWords[i%len(goldenWords)], i*i, prose(i, 3))
		if i%25 == 24 {
			b.WriteString("\n")
		}
	}
	return &freshen.Document{Blocks: []freshen.Block{h(2, "main.go"), code(b.String())}}
}

var goldenCases = []struct {
	name string
	cfg  Config
	doc  func() *freshen.Document
}{
	{"guide", Config{}, guide},
	{"guide-overlap", Config{OverlapBlocks: 2}, guide},
	{"guide-small", Config{MinTokens: 16, TargetTokens: 48, MaxTokens: 96, HardHeadingLevel: 2}, guide},
	{"huge-paragraph", Config{}, hugeParagraph},
	{"enormous-words", Config{}, enormousWords},
	{"huge-code", Config{}, hugeCode},
}

// TestGolden pins chunk boundaries, headings and hashes of fixed
// documents, so that any change of output shows in review. Regenerate
// with: go test ./chunk/ -run TestGolden -update
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := setup(t, tc.cfg)
			got := formatGolden(c, mustSplit(t, c, tc.doc()))
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", path, firstDiff(string(want), got))
			}
		})
	}
}

func formatGolden(c *Chunker, chunks []freshen.Chunk) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: %s\nchunks: %d\n", c.Version(), len(chunks))
	for _, ch := range chunks {
		fmt.Fprintf(&b, "\n=== chunk %d tokens=%d hash=%s\nheadings: %q\n", ch.Ordinal, ch.Tokens, ch.Hash, ch.Headings)
		for _, line := range strings.Split(ch.Text, "\n") {
			b.WriteString(strings.TrimRight("  "+line, " "))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant: %s\n got: %s", i+1, w, g)
		}
	}
	return ""
}

// TestChunkInvariants checks what every output must satisfy, on the
// golden documents and on generated ones, for several configurations.
func TestChunkInvariants(t *testing.T) {
	docs := []*freshen.Document{guide(), hugeParagraph(), enormousWords(), hugeCode()}
	for seed := range uint64(5) {
		docs = append(docs, newGen(seed).document(20))
	}
	for _, cfg := range []Config{{}, {OverlapBlocks: 2}, {MinTokens: 16, TargetTokens: 48, MaxTokens: 96, HardHeadingLevel: 1}} {
		c, bundle := setup(t, cfg)
		for di, doc := range docs {
			chunks := mustSplit(t, c, doc)
			if len(chunks) == 0 {
				t.Fatalf("%s doc %d: no chunks", c.Version(), di)
			}
			for i, ch := range chunks {
				where := fmt.Sprintf("%s doc %d chunk %d", c.Version(), di, i)
				if ch.Ordinal != i {
					t.Errorf("%s: Ordinal %d", where, ch.Ordinal)
				}
				if ch.Tokens != EstimateTokens(ch.Text) || ch.Tokens < 1 {
					t.Errorf("%s: Tokens %d, estimate %d", where, ch.Tokens, EstimateTokens(ch.Text))
				}
				if ch.Tokens > bundle.cfg.MaxTokens {
					t.Errorf("%s: %d tokens, over MaxTokens %d", where, ch.Tokens, bundle.cfg.MaxTokens)
				}
				if ch.Hash != freshen.HashChunk(c.Version(), ch.Text) {
					t.Errorf("%s: hash is not HashChunk(Version, Text)", where)
				}
				if !utf8.ValidString(ch.Text) || strings.TrimSpace(ch.Text) == "" || ch.Text != strings.TrimRight(ch.Text, " \t\n") {
					t.Errorf("%s: text blank, not valid UTF-8 or with trailing space: %q", where, ch.Text)
				}
			}
		}
	}
}

// TestHeadings checks that a hard heading opens a chunk whose text begins
// with it and whose trail ends with it, that deeper headings stay inside
// chunks, and that the trail is outermost first.
func TestHeadings(t *testing.T) {
	c, _ := setup(t, Config{})
	chunks := mustSplit(t, c, guide())
	opens := map[string][]string{}
	for _, ch := range chunks {
		opens[strings.SplitN(ch.Text, "\n\n", 2)[0]] = ch.Headings
	}
	for _, tc := range []struct {
		heading string
		trail   []string
	}{
		{"freshen", []string{"freshen"}},
		{"Install", []string{"freshen", "Install"}},
		{"From source", []string{"freshen", "Install", "From source"}},
		{"Configure", []string{"freshen", "Configure"}},
		{"Budgets", []string{"freshen", "Configure", "Budgets"}},
		{"Records", []string{"freshen", "Records"}},
		{"Unicode", []string{"freshen", "Unicode"}},
		{"Appendix", []string{"Appendix"}}, // level 0 counts as 1
	} {
		trail, ok := opens[tc.heading]
		if !ok {
			t.Errorf("no chunk begins with heading %q", tc.heading)
			continue
		}
		if !slices.Equal(trail, tc.trail) {
			t.Errorf("chunk opened by %q: headings %q, want %q", tc.heading, trail, tc.trail)
		}
	}
	for _, deep := range []string{"Windows", "A deep note"} {
		for _, ch := range chunks {
			if strings.HasSuffix(ch.Text, deep) {
				t.Errorf("a chunk ends with the deep heading %q", deep)
			}
		}
	}
}

// TestNormalization checks which differences do not change any hash.
func TestNormalization(t *testing.T) {
	c, _ := setup(t, Config{})
	hashes := func(blocks ...freshen.Block) []freshen.ChunkHash {
		var hs []freshen.ChunkHash
		for _, ch := range mustSplit(t, c, &freshen.Document{Blocks: blocks}) {
			hs = append(hs, ch.Hash)
		}
		return hs
	}
	same := func(name string, a, b []freshen.Block) {
		t.Helper()
		if ha, hb := hashes(a...), hashes(b...); !slices.Equal(ha, hb) {
			t.Errorf("%s: hashes differ: %v vs %v", name, ha, hb)
		}
	}
	differ := func(name string, a, b []freshen.Block) {
		t.Helper()
		if ha, hb := hashes(a...), hashes(b...); slices.Equal(ha, hb) {
			t.Errorf("%s: hashes are equal, want a change", name)
		}
	}
	same("re-wrapped prose",
		[]freshen.Block{p("one two three\nfour  five\tsix")},
		[]freshen.Block{p("  one two\nthree four five six \n")})
	same("NFD and NFC",
		[]freshen.Block{p("Cafe\u0301 cre\u0300me")},
		[]freshen.Block{p("Caf\u00e9 cr\u00e8me")})
	same("CRLF and trailing spaces in code",
		[]freshen.Block{code("\n\nif x {\r\n\treturn  \r\n}\r\n\n")},
		[]freshen.Block{code("if x {\n\treturn\n}")})
	same("blank blocks",
		[]freshen.Block{p("a b c"), p(" \n "), h(4, "\t")},
		[]freshen.Block{p("a b c")})
	differ("indentation in code",
		[]freshen.Block{code("if x {\n\treturn\n}")},
		[]freshen.Block{code("if x {\nreturn\n}")})
	differ("a word",
		[]freshen.Block{p("one two three")},
		[]freshen.Block{p("one two four")})
	if got := mustSplit(t, c, &freshen.Document{Blocks: []freshen.Block{p("bad \xff byte")}}); got[0].Text != "bad \uFFFD byte" {
		t.Errorf("invalid UTF-8: text %q", got[0].Text)
	}
}

// TestHeadingTrailNotHashed checks the choice documented in doc.go:
// renaming a section re-embeds only the chunk that holds the heading.
func TestHeadingTrailNotHashed(t *testing.T) {
	c, _ := setup(t, Config{})
	doc := newGen(7).document(20)
	before := mustSplit(t, c, doc)
	blocks := slices.Clone(doc.Blocks)
	renamed := -1
	for i, b := range blocks {
		if i > 0 && b.Kind == freshen.BlockHeading && b.Level == 2 {
			blocks[i].Text = "A renamed section"
			renamed = i
			break
		}
	}
	after := mustSplit(t, c, withBlocks(doc, blocks))
	if n := newHashes(before, after); n != 1 {
		t.Errorf("renaming heading %d re-embeds %d chunks, want 1", renamed, n)
	}
}

func TestEmpty(t *testing.T) {
	c, _ := setup(t, Config{})
	for name, doc := range map[string]*freshen.Document{
		"nil":    nil,
		"empty":  {},
		"blank":  {Blocks: []freshen.Block{p(""), p(" \n\t"), code("\n\n"), h(1, " ")}},
		"titled": {Title: "only a title"},
	} {
		chunks, err := c.Split(doc)
		if err != nil || len(chunks) != 0 {
			t.Errorf("%s: Split = %d chunks, %v; want none, nil", name, len(chunks), err)
		}
	}
}

// TestDeterminism checks that equal input gives equal output: from one
// Chunker, from two, from concurrent calls, and that the output does not
// alias the input or earlier output.
func TestDeterminism(t *testing.T) {
	c1, _ := setup(t, Config{})
	c2, _ := setup(t, Config{})
	doc := newGen(3).document(30)
	want := mustSplit(t, c1, doc)
	if got := mustSplit(t, c2, doc); !reflect.DeepEqual(got, want) {
		t.Fatal("two Chunkers with one Config disagree")
	}
	var wg sync.WaitGroup
	results := make([][]freshen.Chunk, 8)
	for i := range results {
		wg.Go(func() { results[i] = mustSplit(t, c1, doc) })
	}
	wg.Wait()
	for i, got := range results {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("concurrent Split %d differs", i)
		}
	}
	for _, ch := range results[0] {
		for k := range ch.Headings {
			ch.Headings[k] = "mutated"
		}
	}
	if got := mustSplit(t, c1, doc); !reflect.DeepEqual(got, want) {
		t.Fatal("mutating returned Headings changed later output")
	}
}

func TestAppendSection(t *testing.T) {
	c, _ := setup(t, Config{})
	for seed := range uint64(10) {
		g := newGen(seed)
		doc := g.document(20)
		before := mustSplit(t, c, doc)
		added := g.section(2)
		after := mustSplit(t, c, withBlocks(doc, append(slices.Clone(doc.Blocks), added...)))
		tail := mustSplit(t, c, &freshen.Document{Blocks: added})
		if n := newHashes(before, after); n != len(tail) {
			t.Errorf("seed %d: appending a section of %d chunks re-embeds %d", seed, len(tail), n)
		}
		if lost := newHashes(after, before); lost != 0 {
			t.Errorf("seed %d: appending a section removes %d old chunks", seed, lost)
		}
	}
}

func TestMoveSection(t *testing.T) {
	c, _ := setup(t, Config{})
	var dist [4]int
	for seed := range uint64(20) {
		g := newGen(seed)
		doc := g.document(20)
		before := mustSplit(t, c, doc)
		// A section: a heading and everything up to the next heading of the
		// same or a higher level.
		var starts []int
		for i, b := range doc.Blocks {
			if i > 0 && b.Kind == freshen.BlockHeading && b.Level <= 3 {
				starts = append(starts, i)
			}
		}
		from := starts[g.r.IntN(len(starts))]
		to := from + 1
		for to < len(doc.Blocks) && !(doc.Blocks[to].Kind == freshen.BlockHeading && doc.Blocks[to].Level <= doc.Blocks[from].Level) {
			to++
		}
		section := doc.Blocks[from:to]
		rest := slices.Concat(doc.Blocks[:from], doc.Blocks[to:])
		var gaps []int
		for i, b := range rest {
			if i > 0 && b.Kind == freshen.BlockHeading && b.Level <= 3 {
				gaps = append(gaps, i)
			}
		}
		gaps = append(gaps, len(rest))
		at := gaps[g.r.IntN(len(gaps))]
		moved := withBlocks(doc, slices.Concat(rest[:at], section, rest[at:]))
		n := newHashes(before, mustSplit(t, c, moved))
		dist[min(n, 3)]++
		if n > 2 {
			t.Errorf("seed %d: moving blocks %d-%d to %d re-embeds %d chunks", seed, from, to, at, n)
		}
	}
	t.Logf("moving a section re-embeds: %s", formatDist(dist[:]))
}

// TestHugeBlocks checks that blocks over MaxTokens are cut into pieces that
// fit, that the pieces join back into the block, and that an edit inside
// a huge block stays local.
func TestHugeBlocks(t *testing.T) {
	c, bundle := setup(t, Config{})
	for _, tc := range []struct {
		name string
		doc  *freshen.Document
		join string // what separates two pieces of the huge block
	}{
		{"paragraph", &freshen.Document{Blocks: []freshen.Block{p(prose(21, 3000))}}, " "},
		{"word", &freshen.Document{Blocks: []freshen.Block{enormousWords().Blocks[1]}}, ""},
		{"cjk", &freshen.Document{Blocks: []freshen.Block{enormousWords().Blocks[2]}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := mustSplit(t, c, tc.doc)
			if len(chunks) < 5 {
				t.Fatalf("%d chunks, want the block cut into many", len(chunks))
			}
			var texts []string
			for _, ch := range chunks {
				if ch.Tokens > bundle.cfg.MaxTokens {
					t.Errorf("chunk %d: %d tokens, over %d", ch.Ordinal, ch.Tokens, bundle.cfg.MaxTokens)
				}
				texts = append(texts, ch.Text)
			}
			if got, want := strings.Join(texts, tc.join), normalizeProse(tc.doc.Blocks[0].Text); got != want {
				t.Errorf("pieces do not join back into the block")
			}
			// Change one character in the middle of the block, many times.
			var dist [5]int
			text := tc.doc.Blocks[0].Text
			for i := 0; i < 40; i++ {
				at := len(text)/4 + i*len(text)/80
				for !utf8.RuneStart(text[at]) || text[at] == ' ' || text[at] == '.' {
					at++
				}
				r, size := utf8.DecodeRuneInString(text[at:])
				repl := "Q"
				if r == 'Q' || r >= utf8.RuneSelf {
					repl = "字"
					if r == '字' {
						repl = "Z"
					}
				}
				edited := text[:at] + repl + text[at+size:]
				editedDoc := &freshen.Document{Blocks: []freshen.Block{p(edited)}}
				n := newHashes(chunks, mustSplit(t, c, editedDoc))
				dist[min(n, 4)]++
				if n > 3 || n == 3 && !forcedNear(t, c, tc.doc, editedDoc) {
					t.Errorf("an edit at byte %d re-embeds %d chunks of %d", at, n, len(chunks))
				}
			}
			t.Logf("%d chunks; one-character edits re-embed: %s", len(chunks), formatDist(dist[:]))
		})
	}
}

func TestOverlap(t *testing.T) {
	c, bundle := setup(t, Config{OverlapBlocks: 1})
	plain, _ := setup(t, Config{})
	doc := newGen(5).document(20)
	chunks, own := mustSplit(t, c, doc), mustSplit(t, plain, doc)
	if len(chunks) != len(own) {
		t.Fatalf("overlap changed the number of chunks: %d vs %d", len(chunks), len(own))
	}
	hard := map[string]bool{}
	for _, b := range doc.Blocks {
		if b.Kind == freshen.BlockHeading && b.Level <= bundle.cfg.HardHeadingLevel {
			hard[b.Text] = true
		}
	}
	overlapped := 0
	for i, ch := range chunks {
		if ch.Tokens > bundle.cfg.MaxTokens {
			t.Errorf("chunk %d: %d tokens with overlap, over %d", i, ch.Tokens, bundle.cfg.MaxTokens)
		}
		if !strings.HasSuffix(ch.Text, own[i].Text) {
			t.Fatalf("chunk %d: own text is not a suffix of the text with overlap", i)
		}
		if ch.Text == own[i].Text {
			continue
		}
		overlapped++
		if i == 0 || hard[strings.SplitN(own[i].Text, "\n\n", 2)[0]] {
			t.Errorf("chunk %d: overlap crosses a section", i)
		}
		if prefix := strings.TrimSuffix(ch.Text, own[i].Text); !strings.HasSuffix(own[i-1].Text, strings.TrimRight(prefix, "\n ")) {
			t.Errorf("chunk %d: overlap %q is not the end of the previous chunk", i, prefix)
		}
	}
	if overlapped == 0 {
		t.Fatal("no chunk has overlap")
	}
	// An edit now also changes the next chunk when it touches the
	// overlapped block: at most one more than without overlap.
	var dist [5]int
	g := newGen(99)
	insert, change := edits[slices.IndexFunc(edits, func(e edit) bool { return e.name == "insert" })],
		edits[slices.IndexFunc(edits, func(e edit) bool { return e.name == "edit" })]
	for range 200 {
		e := insert
		if g.r.IntN(2) == 0 {
			e = change
		}
		edited, _ := e.apply(c, g, doc)
		n := newHashes(chunks, mustSplit(t, c, edited))
		dist[min(n, 4)]++
		if n > 4 {
			t.Errorf("%s re-embeds %d chunks with overlap", e.name, n)
		}
	}
	t.Logf("with overlap 1, inserts and edits re-embed: %s", formatDist(dist[:]))
}

func TestVersion(t *testing.T) {
	c, _ := setup(t, Config{})
	if got, want := c.Version(), "cdc-v1:min=64,target=200,max=400,hard=3,overlap=0"; got != want {
		t.Errorf("Version() = %q, want %q", got, want)
	}
	seen := map[string]bool{c.Version(): true}
	for _, cfg := range []Config{
		{MinTokens: 32}, {TargetTokens: 180}, {MaxTokens: 500}, {HardHeadingLevel: 2}, {OverlapBlocks: 1},
	} {
		v, _ := setup(t, cfg)
		if seen[v.Version()] {
			t.Errorf("%+v: Version %q not distinct", cfg, v.Version())
		}
		seen[v.Version()] = true
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{Config{}, ""},
		{Config{MinTokens: 10, TargetTokens: 40, MaxTokens: 80, HardHeadingLevel: 6, OverlapBlocks: 3}, ""},
		{Config{MinTokens: -1}, "min-tokens is -1; it cannot be negative"},
		{Config{OverlapBlocks: -2}, "overlap-blocks is -2"},
		{Config{HardHeadingLevel: -1}, "hard-heading-level is -1"},
		{Config{MinTokens: 300}, "min-tokens (300) must be below target-tokens (200)"},
		{Config{MaxTokens: 150}, "target-tokens (200) must be below max-tokens (150)"},
		{Config{TargetTokens: 300}, "raise max-tokens to at least 536"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
		if _, nerr := New(tc.cfg); (nerr == nil) != (err == nil) {
			t.Errorf("%+v: New and Validate disagree: %v vs %v", tc.cfg, nerr, err)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"   \n\t", 0},
		{"the", 1},
		{"chunker", 2},
		{"internationalization", 4},
		{"Hello, world.", 4},
		{"x := f(a, b)", 8},
		{"----------", 5},
		{"日本語", 3},
		{"café", 1},
		{"Cafe\u0301", 1},
	} {
		if got := EstimateTokens(tc.in); got != tc.want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	// Subadditive, which the MaxTokens guarantee relies on.
	parts := []string{"abc", "de", "!!", "?", "字", "fgh1", " ", "x"}
	for _, a := range parts {
		for _, b := range parts {
			if EstimateTokens(a+b) > EstimateTokens(a)+EstimateTokens(b) {
				t.Errorf("EstimateTokens(%q+%q) exceeds the sum of the parts", a, b)
			}
		}
	}
}
