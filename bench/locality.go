package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/extract"
)

var editKinds = []string{"typo", "insert-top", "insert-middle", "insert-end", "delete-paragraph", "move-section",
	"append-section", "metadata-only", "identical-reupload", "rename", "duplicate"}

// singleParagraph kinds are the edits the ≤ 2 chunk target is about.
var singleParagraph = map[string]bool{"typo": true, "insert-top": true, "insert-middle": true, "insert-end": true, "delete-paragraph": true}

type op struct {
	Op   string `json:"op"`
	Key  string `json:"key"`
	Text string `json:"text,omitempty"` // extracted text, for the peers
	raw  []byte // the object's bytes, for freshen
}

type step struct {
	Kind          string `json:"kind"`
	Ops           []op   `json:"ops"`
	changedTokens int
}

type workload struct {
	Docs  []op   `json:"docs"`
	Steps []step `json:"steps"`
}

// countingEmbedder costs nothing and counts what it is sent: freshen's side
// of the shared counting embedder, and the zero-cost embedder of the
// pipeline ceiling. Safe for concurrent workers.
type countingEmbedder struct{ texts, tokens atomic.Int64 }

func (c *countingEmbedder) Model() freshen.ModelInfo {
	return freshen.ModelInfo{Name: "counter", Dim: 8}
}
func (c *countingEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		c.texts.Add(1)
		c.tokens.Add(int64(countTokens(t)))
		out[i] = []float32{1, 0, 0, 0, 0, 0, 0, float32(i)}
	}
	return out, nil
}

// buildWorkload generates the corpus and a seeded list of edits.
func buildWorkload(quick bool) (*workload, error) {
	nDocs, perKind := 300, 20
	if quick {
		nDocs, perKind = 60, 6
	}
	r := rand.New(rand.NewSource(2026))
	ext := extract.New(extract.Config{})
	textOf := func(key string, raw []byte) (string, error) {
		ct := "text/markdown"
		if strings.HasSuffix(key, ".html") {
			ct = "text/html"
		}
		d, err := ext.Extract(context.Background(), bytes.NewReader(raw), freshen.ObjectInfo{Key: key, ContentType: ct})
		if err != nil {
			return "", err
		}
		var parts []string
		for _, b := range d.Blocks {
			parts = append(parts, b.Text)
		}
		return strings.Join(parts, "\n\n"), nil
	}
	w := &workload{}
	docs := map[string]*doc{}
	var keys []string
	for i := 0; i < nDocs; i++ {
		isHTML := i%3 == 2
		key := fmt.Sprintf("docs/guide-%03d.md", i)
		if isHTML {
			key = fmt.Sprintf("docs/page-%03d.html", i)
		}
		d := genDoc(r, i, logUniform(r, 1_000, 200_000), isHTML)
		docs[key] = d
		keys = append(keys, key)
	}
	mk := func(opName, key string, d *doc) (op, error) {
		if opName == "delete" {
			return op{Op: "delete", Key: key}, nil
		}
		raw := []byte(d.render())
		t, err := textOf(key, raw)
		return op{Op: "put", Key: key, Text: t, raw: raw}, err
	}
	for _, k := range keys {
		o, err := mk("put", k, docs[k])
		if err != nil {
			return nil, err
		}
		w.Docs = append(w.Docs, o)
	}
	renamed := 0
	for round := 0; round < perKind; round++ {
		for _, kind := range editKinds {
			key := keys[r.Intn(len(keys))]
			d := docs[key].clone()
			paras := d.paragraphs()
			s := step{Kind: kind}
			newPara := paragraph(r, 40+r.Intn(80))
			switch kind {
			case "typo":
				p := paras[r.Intn(len(paras))]
				b := &d.sections[p[0]].blocks[p[1]]
				ws := strings.Fields(b.text)
				j := r.Intn(len(ws))
				ws[j] = ws[j] + "x"
				b.text = strings.Join(ws, " ")
				s.changedTokens = countTokens(ws[j])
			case "insert-top", "insert-middle", "insert-end":
				var p [2]int
				switch kind {
				case "insert-top":
					p = paras[0]
				case "insert-middle":
					p = paras[len(paras)/2]
				default:
					p = paras[len(paras)-1]
				}
				sec := &d.sections[p[0]]
				at := p[1]
				if kind == "insert-end" {
					at++
				}
				sec.blocks = append(sec.blocks[:at], append([]block_{{"p", newPara}}, sec.blocks[at:]...)...)
				s.changedTokens = countTokens(newPara)
			case "delete-paragraph":
				if len(paras) < 2 {
					continue
				}
				p := paras[r.Intn(len(paras))]
				sec := &d.sections[p[0]]
				s.changedTokens = countTokens(sec.blocks[p[1]].text)
				sec.blocks = append(sec.blocks[:p[1]], sec.blocks[p[1]+1:]...)
			case "move-section":
				if len(d.sections) < 3 {
					continue
				}
				i, j := r.Intn(len(d.sections)), r.Intn(len(d.sections))
				if i == j {
					j = (i + 1) % len(d.sections)
				}
				moved := d.sections[i]
				rest := append(append([]section_(nil), d.sections[:i]...), d.sections[i+1:]...)
				j = min(j, len(rest))
				d.sections = append(rest[:j], append([]section_{moved}, rest[j:]...)...)
				for _, b := range moved.blocks {
					s.changedTokens += countTokens(b.text)
				}
			case "append-section":
				sec := section_{heading: "Appendix " + words[r.Intn(60)], level: 2, blocks: []block_{{"p", newPara}, {"p", paragraph(r, 60)}}}
				d.sections = append(d.sections, sec)
				for _, b := range sec.blocks {
					s.changedTokens += countTokens(b.text)
				}
			case "metadata-only", "identical-reupload":
				// Same bytes again (metadata lives outside the body).
			case "rename":
				renamed++
				nk := fmt.Sprintf("archive/renamed-%d-%s", renamed, path.Base(key))
				o, err := mk("put", nk, d)
				if err != nil {
					return nil, err
				}
				s.Ops = append(s.Ops, o, op{Op: "delete", Key: key})
				docs[nk] = d
				delete(docs, key)
				for i := range keys {
					if keys[i] == key {
						keys[i] = nk
					}
				}
				w.Steps = append(w.Steps, s)
				continue
			case "duplicate":
				renamed++
				nk := fmt.Sprintf("copies/copy-%d-%s", renamed, path.Base(key))
				o, err := mk("put", nk, d)
				if err != nil {
					return nil, err
				}
				s.Ops = append(s.Ops, o)
				docs[nk] = d
				w.Steps = append(w.Steps, s)
				continue
			}
			o, err := mk("put", key, d)
			if err != nil {
				return nil, err
			}
			s.Ops = append(s.Ops, o)
			docs[key] = d
			w.Steps = append(w.Steps, s)
		}
	}
	return w, nil
}

type kindCount struct {
	Steps  int   `json:"steps"`
	Texts  int64 `json:"texts"`
	Tokens int64 `json:"tokens"`
}

type toolResult struct {
	Version string               `json:"version"`
	Initial kindCount            `json:"initial"`
	Kinds   map[string]kindCount `json:"kinds"`
	Total   kindCount            `json:"total"`
	Notes   []string             `json:"notes"`
}

// runFreshen replays the workload through freshen's pipeline.
func runFreshen(ctx context.Context, w *workload) (toolResult, []int, error) {
	emb := &countingEmbedder{}
	s, err := newStack(ctx, emb, 4, nil)
	if err != nil {
		return toolResult{}, nil, err
	}
	defer s.close()
	res := toolResult{Version: s.chk.Version(), Kinds: map[string]kindCount{}}
	var keys []string
	for _, d := range w.Docs {
		s.src.Put(d.Key, contentTypeOf(d.Key), d.raw)
		keys = append(keys, d.Key)
	}
	if err := s.sync(ctx, keys...); err != nil {
		return res, nil, err
	}
	res.Initial = kindCount{Texts: emb.texts.Load(), Tokens: emb.tokens.Load()}
	var perEdit []int
	for _, st := range w.Steps {
		t0, k0 := emb.texts.Load(), emb.tokens.Load()
		var touched []string
		for _, o := range st.Ops {
			if o.Op == "delete" {
				s.src.Delete(o.Key)
			} else {
				s.src.Put(o.Key, contentTypeOf(o.Key), o.raw)
			}
			touched = append(touched, o.Key)
		}
		if err := s.sync(ctx, touched...); err != nil {
			return res, nil, err
		}
		kc := res.Kinds[st.Kind]
		kc.Steps++
		kc.Texts += emb.texts.Load() - t0
		kc.Tokens += emb.tokens.Load() - k0
		res.Kinds[st.Kind] = kc
		if singleParagraph[st.Kind] {
			perEdit = append(perEdit, int(emb.texts.Load()-t0))
		}
	}
	for _, kc := range res.Kinds {
		res.Total.Texts += kc.Texts
		res.Total.Tokens += kc.Tokens
		res.Total.Steps += kc.Steps
	}
	sum, _ := s.led.Summary(ctx)
	if sum.Failed > 0 {
		return res, nil, fmt.Errorf("freshen failed %d objects", sum.Failed)
	}
	return res, perEdit, nil
}

func contentTypeOf(key string) string {
	if strings.HasSuffix(key, ".html") {
		return "text/html"
	}
	return "text/markdown"
}

// runPeers runs LangChain.js and LlamaIndex.TS on the same workload.
func runPeers(w *workload, dir string) (map[string]toolResult, error) {
	peers := os.Getenv("FRESHEN_PEERS_DIR")
	if peers == "" {
		return nil, fmt.Errorf("FRESHEN_PEERS_DIR is not set: run ./scripts/bench.sh, which installs the npm peers")
	}
	wf := filepath.Join(dir, "workload.json")
	b, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(wf, b, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("node", filepath.Join(peers, "run.mjs"), wf)
	cmd.Dir = peers
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node run.mjs: %w", err)
	}
	var res struct {
		Tools map[string]toolResult `json:"tools"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("peer output: %w", err)
	}
	return res.Tools, nil
}

func (r *runner) locality() (section, error) {
	ctx := context.Background()
	w, err := buildWorkload(r.quick)
	if err != nil {
		return section{}, err
	}
	changed := map[string]int{}
	var corpusBytes int
	for _, d := range w.Docs {
		corpusBytes += len(d.raw)
	}
	for _, s := range w.Steps {
		changed[s.Kind] += s.changedTokens
	}
	fr, perEdit, err := runFreshen(ctx, w)
	if err != nil {
		return section{}, err
	}
	dir, err := os.MkdirTemp("", "freshen-locality-")
	if err != nil {
		return section{}, err
	}
	defer os.RemoveAll(dir)
	peers, err := runPeers(w, dir)
	if err != nil {
		return section{}, err
	}
	lc, li := peers["langchain"], peers["llamaindex"]
	amp := func(tokens int64, kind string) string {
		if changed[kind] == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f", float64(tokens)/float64(changed[kind]))
	}
	var rows [][]string
	totalChanged := 0
	for _, k := range editKinds {
		f, l, x := fr.Kinds[k], lc.Kinds[k], li.Kinds[k]
		totalChanged += changed[k]
		rows = append(rows, []string{k, fmt.Sprint(f.Steps), fmt.Sprint(changed[k]),
			fmt.Sprintf("%d / %d", f.Texts, f.Tokens), amp(f.Tokens, k),
			fmt.Sprintf("%d / %d", l.Texts, l.Tokens), amp(l.Tokens, k),
			fmt.Sprintf("%d / %d", x.Texts, x.Tokens), amp(x.Tokens, k)})
	}
	ampTotal := func(t int64) string { return fmt.Sprintf("%.1f", float64(t)/float64(totalChanged)) }
	rows = append(rows, []string{"**total**", fmt.Sprint(fr.Total.Steps), fmt.Sprint(totalChanged),
		fmt.Sprintf("**%d / %d**", fr.Total.Texts, fr.Total.Tokens), ampTotal(fr.Total.Tokens),
		fmt.Sprintf("%d / %d", lc.Total.Texts, lc.Total.Tokens), ampTotal(lc.Total.Tokens),
		fmt.Sprintf("%d / %d", li.Total.Texts, li.Total.Tokens), ampTotal(li.Total.Tokens)})

	sort.Ints(perEdit)
	p50, mx := perEdit[len(perEdit)/2], perEdit[len(perEdit)-1]
	hist := map[int]int{}
	for _, n := range perEdit {
		hist[n]++
	}
	r.summary["edit_tokens_freshen"] = float64(fr.Total.Tokens)
	r.summary["edit_tokens_langchain"] = float64(lc.Total.Tokens)
	r.summary["edit_tokens_llamaindex"] = float64(li.Total.Tokens)
	r.summary["edit_single_paragraph_chunks_p50"] = float64(p50)
	r.summary["edit_single_paragraph_chunks_max"] = float64(mx)

	plot := filepath.Join(r.results, "edit-locality.png")
	if err := barChart(plot, "tokens embedded per edit kind (log scale)", editKinds, []string{"freshen", "LangChain.js", "LlamaIndex.TS"},
		func(kind string, tool int) float64 {
			return float64([]int64{fr.Kinds[kind].Tokens, lc.Kinds[kind].Tokens, li.Kinds[kind].Tokens}[tool])
		}); err != nil {
		return section{}, err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%d generated documents (Markdown and HTML, 1 KB–200 KB, %.1f MB in all, seed 2026), then %d seeded edits. Every tool embeds through the same counting embedder (tokens = ⌈code points / 4⌉ of each text sent). freshen runs its real extractor, chunker (`%s`), ledger and pipeline; LangChain.js runs `index()` with `cleanup: \"incremental\"` and `RecursiveCharacterTextSplitter` (1000/200); LlamaIndex.TS runs `IngestionPipeline` with a docstore, `DocStoreStrategy.UPSERTS` and `SentenceSplitter` defaults. The peers index the text freshen's extractor produces, so only chunking and change tracking differ.\n\n",
		len(w.Docs), float64(corpusBytes)/1e6, len(w.Steps), fr.Version)
	fmt.Fprintf(&b, "Initial indexing: freshen %d chunks / %d tokens, LangChain.js %d / %d, LlamaIndex.TS %d / %d.\n\n",
		fr.Initial.Texts, fr.Initial.Tokens, lc.Initial.Texts, lc.Initial.Tokens, li.Initial.Texts, li.Initial.Tokens)
	b.WriteString("Chunks / tokens embedded by the edits, and amplification = tokens embedded ÷ tokens of text changed:\n\n")
	b.WriteString(table([]string{"edit", "edits", "tokens changed", "freshen", "amp.", "LangChain.js", "amp.", "LlamaIndex.TS", "amp."}, rows))
	fmt.Fprintf(&b, "\nOver the whole workload freshen embedded **%.3f×** LangChain.js's tokens (target ≤ 0.2) and **%.3f×** LlamaIndex.TS's (target ≤ 0.05).\n\n",
		float64(fr.Total.Tokens)/float64(max(lc.Total.Tokens, 1)), float64(fr.Total.Tokens)/float64(max(li.Total.Tokens, 1)))
	var hs []string
	for n := 0; n <= mx; n++ {
		if hist[n] > 0 {
			hs = append(hs, fmt.Sprintf("%d chunk(s): %d", n, hist[n]))
		}
	}
	fmt.Fprintf(&b, "Single-paragraph edits (typo, insert, delete; %d of them): chunks re-embedded median **%d**, max **%d** (target ≤ 2, median 1) — %s.\n\n", len(perEdit), p50, mx, strings.Join(hs, ", "))
	fmt.Fprintf(&b, "![tokens embedded per edit kind](bench/results/edit-locality.png)\n")
	for _, t := range []struct {
		name string
		res  toolResult
	}{{"LangChain.js", lc}, {"LlamaIndex.TS", li}} {
		for _, n := range t.res.Notes {
			fmt.Fprintf(&b, "\nNote (%s): %s\n", t.name, n)
		}
	}
	return section{title: "Edit locality: tokens embedded per change", body: b.String()}, nil
}
