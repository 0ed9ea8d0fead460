package builtin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/freshen-io/freshen"
	"github.com/freshen-io/freshen/embed/builtin/internal/modelfile"
)

func setup(t testing.TB) *Model {
	t.Helper()
	m, err := Default()
	if err != nil {
		t.Fatalf("load built-in model: %v", err)
	}
	return m
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func l2norm(a []float32) float64 {
	var s float64
	for _, v := range a {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// Golden values from the TF.js reference (see ../../shared/COMPONENTS.md).
func TestGoldenTokens(t *testing.T) {
	m := setup(t)
	for text, want := range map[string][]int{
		"A dog runs in the park":        {74, 959, 2696, 15, 9, 2288},
		"A puppy plays outside":         {74, 6430, 3676, 1080},
		"Quarterly tax filing deadline": {1878, 1655, 46, 56, 1189, 6349, 1352, 721},
	} {
		if got := m.Tokenize(text); !slices.Equal(got, want) {
			t.Errorf("Tokenize(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestGoldenEmbeddings(t *testing.T) {
	m := setup(t)
	v, err := m.Embed(context.Background(), []string{"A dog runs in the park", "A puppy plays outside", "Quarterly tax filing deadline"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{-0.05353, 0.04576, 0.05792, -0.04720, -0.04552} {
		if d := math.Abs(float64(v[0][i] - want)); d > 1e-4 {
			t.Errorf("dog[%d] = %.5f, want %.5f (|diff| %.1e > 1e-4)", i, v[0][i], want, d)
		}
	}
	for _, c := range []struct {
		a, b int
		want float64
	}{{0, 1, 0.6647}, {0, 2, 0.1334}, {1, 2, 0.1241}} {
		if got := cosine(v[c.a], v[c.b]); math.Abs(got-c.want) > 1e-3 {
			t.Errorf("cosine(%d,%d) = %.4f, want %.4f", c.a, c.b, got, c.want)
		}
	}
	for i := range v {
		if n := l2norm(v[i]); math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d has norm %v", i, n)
		}
	}
}

type referenceCase struct {
	Text   string `json:"text"`
	Tokens []int  `json:"tokens"`
	Vector string `json:"vector"`
}

func loadReference(t *testing.T) []referenceCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []referenceCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 300 {
		t.Fatalf("reference fixture has %d cases, want at least 300", len(ref.Cases))
	}
	return ref.Cases
}

func decodeVector(t *testing.T, s string) []float32 {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 4*Dim {
		t.Fatalf("bad reference vector (%d bytes, %v)", len(raw), err)
	}
	v := make([]float32, Dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// TestAgreementWithReference checks the tokenizer and the forward pass
// against vectors the TF.js model computed (testdata/reference/gen.js).
func TestAgreementWithReference(t *testing.T) {
	m := setup(t)
	worst, worstText := 1.0, ""
	for _, c := range loadReference(t) {
		got := m.Tokenize(c.Text)
		if len(got) == 0 {
			got = []int{} // the reference encodes nothing as []
		}
		if !slices.Equal(got, c.Tokens) {
			t.Errorf("Tokenize(%q) = %v, want %v", c.Text, got, c.Tokens)
			continue
		}
		if c.Vector == "" {
			if _, err := m.Embed(context.Background(), []string{c.Text}); !errors.Is(err, freshen.ErrEmptyInput) {
				t.Errorf("Embed(%q): err = %v, want ErrEmptyInput", c.Text, err)
			}
			continue
		}
		want := decodeVector(t, c.Vector)
		// The graph clips at MaxTokens; Embed windows longer input instead,
		// so compare the clipped forward pass, and Embed where they agree.
		v := m.embedTokens([][]int{c.Tokens})[0]
		if len(c.Tokens) <= MaxTokens {
			e, err := m.Embed(context.Background(), []string{c.Text})
			if err != nil {
				t.Fatalf("Embed(%q): %v", c.Text, err)
			}
			if !slices.Equal(e[0], v) {
				t.Errorf("Embed(%q) differs from the forward pass of its tokens", c.Text)
			}
		}
		cos := cosine(v, want)
		if cos < worst {
			worst, worstText = cos, c.Text
		}
		if cos < 0.9999 {
			t.Errorf("cosine(go, tfjs) = %.6f < 0.9999 for %q", cos, c.Text)
		}
	}
	t.Logf("lowest cosine to the TF.js reference: %.7f (%q)", worst, worstText)
}

func TestBatchEqualsSingle(t *testing.T) {
	m := setup(t)
	texts := []string{"A dog runs in the park", "short", strings.Repeat("The index stays fresh. ", 60), "Quarterly tax filing deadline", "ünïcödé 東京 🙂"}
	batch, err := m.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		one, err := m.Embed(context.Background(), []string{text})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one[0], batch[i]) {
			t.Errorf("text %d: batched vector differs from single (cosine %.9f)", i, cosine(one[0], batch[i]))
		}
	}
}

func TestEmptyInput(t *testing.T) {
	m := setup(t)
	_, err := m.Embed(context.Background(), []string{"fine", ""})
	if !errors.Is(err, freshen.ErrEmptyInput) {
		t.Fatalf("err = %v, want ErrEmptyInput", err)
	}
	out, err := m.Embed(context.Background(), nil)
	if err != nil || len(out) != 0 {
		t.Fatalf("Embed(nil) = %v, %v", out, err)
	}
}

func TestCancelledContext(t *testing.T) {
	m := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Embed(ctx, []string{"hello"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestCancelStopsLongEmbedding: cancelled in the middle of a long text,
// or of a batch of texts, Embed stops after the forward call in progress
// and returns ctx.Err(), instead of embedding every window.
func TestCancelStopsLongEmbedding(t *testing.T) {
	m := *setup(t)
	m.batchTokens = MaxTokens // a window per forward call
	long := strings.Repeat("The orchestra rehearsed the symphony all night. ", 200)
	short := make([]string, 20)
	for i := range short {
		short[i] = strings.Repeat("The river floods the valley every spring. ", 12)
	}
	for _, tc := range []struct {
		name  string
		texts []string
	}{{"one long text", []string{long}}, {"a batch of texts", short}} {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			for _, text := range tc.texts {
				total += max(1, len(m.windows(text)))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ran := 0
			m.forwarded = func(n int) {
				if ran += n; ran == 2 {
					cancel()
				}
			}
			_, err := m.Embed(ctx, tc.texts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if ran != 2 || total < 10 {
				t.Errorf("embedded %d of %d windows after a cancel at the second", ran, total)
			}
		})
	}
}

func TestWindowing(t *testing.T) {
	m := setup(t)
	var sb strings.Builder
	topics := []string{"The river floods the valley every spring.", "Compilers translate source code into machine code.", "The orchestra rehearsed the symphony all night.", "Tax returns must be filed before the deadline."}
	for i := 0; sb.Len() < 6000; i++ {
		sb.WriteString(topics[(i/8)%len(topics)])
		sb.WriteString(" ")
	}
	text := sb.String()
	if n := m.CountTokens(text); n < 1000 {
		t.Fatalf("test text has %d tokens, want >= 1000", n)
	}
	wins := m.windows(text)
	if len(wins) < 8 {
		t.Fatalf("%d windows for a 1000-token text", len(wins))
	}
	total := 0
	for i, w := range wins {
		if len(w) == 0 || len(w) > MaxTokens {
			t.Errorf("window %d has %d tokens", i, len(w))
		}
		total += len(w)
	}
	parts := m.embedTokens(wins)
	mean := make([]float32, Dim)
	for i, p := range parts {
		for d := range mean {
			mean[d] += float32(len(wins[i])) / float32(total) * p[d]
		}
	}
	v, err := m.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	if n := l2norm(v[0]); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm = %v, want 1", n)
	}
	if c := cosine(v[0], mean); c < 0.9999 {
		t.Errorf("cosine(Embed, mean of windows) = %v", c)
	}
	for i, p := range parts {
		if c := cosine(v[0], p); c < 0.3 {
			t.Errorf("window %d: cosine to the whole = %.3f", i, c)
		}
	}
	// Mean of the parts as a sanity bound the issue asks for.
	if c := cosine(v[0], mean); c <= 0.9 {
		t.Errorf("cosine = %v <= 0.9", c)
	}
	again, _ := m.Embed(context.Background(), []string{text})
	if !slices.Equal(again[0], v[0]) {
		t.Error("windowed embedding is not deterministic")
	}
}

func TestWindowsOfOneHugeWord(t *testing.T) {
	m := setup(t)
	word := strings.Repeat("xq", 500) // no spaces, no sentence ends
	v, err := m.Embed(context.Background(), []string{word})
	if err != nil {
		t.Fatal(err)
	}
	if n := l2norm(v[0]); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm = %v", n)
	}
	for _, w := range m.windows(word) {
		if len(w) > MaxTokens {
			t.Errorf("window of %d tokens", len(w))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	good := modelBytes
	cases := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)/2],
		"truncated tail": good[:len(good)-1],
		"bad magic":      append([]byte("NOTMODEL"), good[8:]...),
		"flipped byte":   flip(good, len(good)/3),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := Load(b)
			if err == nil || m != nil {
				t.Fatalf("Load = %v, %v; want an error", m, err)
			}
		})
	}
}

func TestLoadMissingTensor(t *testing.T) {
	f, err := modelfile.Read(modelBytes)
	if err != nil {
		t.Fatal(err)
	}
	delete(f.Tensors, "l1.ffn.conv2.w")
	f.Tensors["l0.attn.qkv.b"].Shape = []int{767}
	f.Tensors["l0.attn.qkv.b"].Data = f.Tensors["l0.attn.qkv.b"].Data[:767]
	var buf bytes.Buffer
	if err := modelfile.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "l0.attn.qkv.b") && !strings.Contains(err.Error(), "l1.ffn.conv2.w") {
		t.Fatalf("Load with a missing tensor: err = %v", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}
