package builtin

import (
	_ "embed"
	"fmt"
	"math"
	"sync"

	"github.com/freshen-io/freshen/embed/builtin/internal/modelfile"
)

//go:embed data/use-lite.bin
var modelBytes []byte

const (
	// MaxTokens is the model's window: the TF graph drops every token past
	// the 128th, so longer texts are embedded window by window.
	MaxTokens = 128
	// Dim is the length of every embedding.
	Dim = 512

	embedDim = 256
	ffnDim   = 1536
	heads    = 4
)

// network holds the weights of the forward pass, in float32.
type network struct {
	embeddings []float32 // [vocab+2, 256]
	invTime    []float32 // [128]: the timing signal's inverse timescales
	lnEps      float32
	l2Eps      float32
	layers     [2]layer
	poolW      []float32 // [512, 512]
	poolB      []float32
	vocabRows  int
}

// layer is one transformer layer. Layer 0 widens 256 to 512 and therefore
// projects its residual input (resW); layer 1 keeps 512.
type layer struct {
	dIn, dOut        int
	attnScale        float32
	attnLNs, attnLNb []float32
	qkvW, qkvB       []float32 // [dIn, 3*dIn]
	outW, outB       []float32 // [dIn, dOut]
	resW, resB       []float32 // [dIn, dOut], layer 0 only
	ffnLNs, ffnLNb   []float32
	conv1W, conv1B   []float32 // [dOut, 1536]
	conv2W, conv2B   []float32 // [1536, dOut]
}

func loadNetwork(f *modelfile.File) (*network, error) {
	get := func(name string, shape ...int) ([]float32, error) {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("builtin: model file has no tensor %q", name)
		}
		if len(t.Shape) != len(shape) {
			return nil, fmt.Errorf("builtin: tensor %q has shape %v, want %v", name, t.Shape, shape)
		}
		for i := range shape {
			if shape[i] >= 0 && t.Shape[i] != shape[i] {
				return nil, fmt.Errorf("builtin: tensor %q has shape %v, want %v", name, t.Shape, shape)
			}
		}
		return t.Data, nil
	}
	var errs []error
	must := func(name string, shape ...int) []float32 {
		d, err := get(name, shape...)
		if err != nil {
			errs = append(errs, err)
		}
		return d
	}
	scalar := func(name string) float32 {
		if d := must(name); len(d) == 1 {
			return d[0]
		}
		return 0
	}
	n := &network{
		embeddings: must("embeddings", -1, embedDim),
		invTime:    must("timing", 1, embedDim/2),
		lnEps:      scalar("ln.eps"),
		l2Eps:      scalar("l2.eps"),
		poolW:      must("pool.w", Dim, Dim),
		poolB:      must("pool.b", Dim),
	}
	for i := range n.layers {
		dIn := Dim
		if i == 0 {
			dIn = embedDim
		}
		p := fmt.Sprintf("l%d.", i)
		l := &n.layers[i]
		l.dIn, l.dOut = dIn, Dim
		l.attnScale = scalar(p + "attn.scale")
		l.attnLNs = must(p+"attn.ln.scale", dIn)
		l.attnLNb = must(p+"attn.ln.bias", dIn)
		l.qkvW = must(p+"attn.qkv.w", dIn, 3*dIn)
		l.qkvB = must(p+"attn.qkv.b", 3*dIn)
		l.outW = must(p+"attn.out.w", dIn, Dim)
		l.outB = must(p+"attn.out.b", Dim)
		if i == 0 {
			l.resW = must("l0.residual.w", embedDim, Dim)
			l.resB = must("l0.residual.b", Dim)
		}
		l.ffnLNs = must(p+"ffn.ln.scale", Dim)
		l.ffnLNb = must(p+"ffn.ln.bias", Dim)
		l.conv1W = must(p+"ffn.conv1.w", Dim, ffnDim)
		l.conv1B = must(p+"ffn.conv1.b", ffnDim)
		l.conv2W = must(p+"ffn.conv2.w", ffnDim, Dim)
		l.conv2B = must(p+"ffn.conv2.b", Dim)
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	n.vocabRows = len(n.embeddings) / embedDim
	if n.vocabRows < len(f.Vocab) {
		return nil, fmt.Errorf("builtin: %d embedding rows for %d vocabulary pieces", n.vocabRows, len(f.Vocab))
	}
	return n, nil
}

// workspace holds the activations of one forward call; it is reused
// through a pool so steady-state embedding does not allocate per call.
type workspace struct {
	x, h, qkv, att, y, r, f []float32
	logits                  []float32
	pooled, hidden          []float32
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// forward embeds a batch of token sequences (each 1..MaxTokens ids) into
// out, one Dim-long row per sequence. Sequences never see each other: rows
// are stacked only so the matrix multiplies run over many tokens at once.
func (n *network) forward(seqs [][]int, out [][]float32) {
	total := 0
	for _, s := range seqs {
		total += len(s)
	}
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)

	// Input: the graph adds the embedding lookup to (embedding + timing
	// signal), so each token row is 2*embedding + signal.
	ws.x = grow(ws.x, total*embedDim)
	row := 0
	half := embedDim / 2
	for _, s := range seqs {
		for pos, id := range s {
			if id < 0 || id >= n.vocabRows {
				id = unknownID
			}
			e := n.embeddings[id*embedDim : (id+1)*embedDim]
			x := ws.x[row*embedDim : (row+1)*embedDim]
			for j := 0; j < half; j++ {
				t := float32(pos) * n.invTime[j]
				x[j] = e[j] + (e[j] + float32(math.Sin(float64(t))))
				x[half+j] = e[half+j] + (e[half+j] + float32(math.Cos(float64(t))))
			}
			row++
		}
	}
	x := ws.x
	for i := range n.layers {
		x = n.layers[i].forward(ws, x, total, seqs, n.lnEps)
	}

	// Mean over each sequence, tanh layer, L2 normalization.
	ws.pooled = grow(ws.pooled, len(seqs)*Dim)
	row = 0
	for si, s := range seqs {
		p := ws.pooled[si*Dim : (si+1)*Dim]
		clear(p)
		for range s {
			xr := x[row*Dim : (row+1)*Dim]
			for j := range p {
				p[j] += xr[j]
			}
			row++
		}
		inv := float32(len(s))
		for j := range p {
			p[j] /= inv
		}
	}
	ws.hidden = grow(ws.hidden, len(seqs)*Dim)
	matmul(ws.hidden, ws.pooled, n.poolW, len(seqs), Dim, Dim)
	for si := range seqs {
		h := ws.hidden[si*Dim : (si+1)*Dim]
		var ss float32
		for j := range h {
			h[j] = float32(math.Tanh(float64(h[j] + n.poolB[j])))
			ss += h[j] * h[j]
		}
		scale := float32(1 / math.Sqrt(float64(max(ss, n.l2Eps))))
		o := out[si]
		for j := range h {
			o[j] = h[j] * scale
		}
	}
}

func (l *layer) forward(ws *workspace, x []float32, rows int, seqs [][]int, eps float32) []float32 {
	dIn, dOut := l.dIn, l.dOut
	ws.h = grow(ws.h, rows*dIn)
	layerNorm(ws.h, x, rows, dIn, l.attnLNs, l.attnLNb, eps)
	ws.qkv = grow(ws.qkv, rows*3*dIn)
	matmul(ws.qkv, ws.h, l.qkvW, rows, dIn, 3*dIn)
	addBias(ws.qkv, l.qkvB)
	ws.att = grow(ws.att, rows*dIn)
	l.attention(ws, rows, seqs)

	ws.y = grow(ws.y, rows*dOut)
	matmul(ws.y, ws.att, l.outW, rows, dIn, dOut)
	addBias(ws.y, l.outB)
	if l.resW != nil {
		ws.r = grow(ws.r, rows*dOut)
		matmul(ws.r, x, l.resW, rows, dIn, dOut)
		addBias(ws.r, l.resB)
		add(ws.y, ws.r)
	} else {
		add(ws.y, x)
	}

	ws.h = grow(ws.h, rows*dOut)
	layerNorm(ws.h, ws.y, rows, dOut, l.ffnLNs, l.ffnLNb, eps)
	ws.f = grow(ws.f, rows*ffnDim)
	matmul(ws.f, ws.h, l.conv1W, rows, dOut, ffnDim)
	for i := 0; i < len(ws.f); i += ffnDim {
		f := ws.f[i : i+ffnDim]
		for j, b := range l.conv1B {
			f[j] = max(f[j]+b, 0)
		}
	}
	ws.r = grow(ws.r, rows*dOut)
	matmul(ws.r, ws.f, l.conv2W, rows, ffnDim, dOut)
	addBias(ws.r, l.conv2B)
	add(ws.y, ws.r)
	// The next layer reads y while writing the workspace's other buffers;
	// swap it into x so the next call's y does not alias its input.
	ws.x, ws.y = ws.y, ws.x
	return ws.x
}

// attention is multi-head self-attention within each sequence. The graph
// scales the queries before the dot product and masks padding with -1e9;
// sequences here carry no padding, which gives the same result.
func (l *layer) attention(ws *workspace, rows int, seqs [][]int) {
	dIn := l.dIn
	hd := dIn / heads
	stride := 3 * dIn
	row0 := 0
	q := make([]float32, hd)
	for _, s := range seqs {
		n := len(s)
		ws.logits = grow(ws.logits, n)
		for h := 0; h < heads; h++ {
			for i := 0; i < n; i++ {
				qi := ws.qkv[(row0+i)*stride+h*hd : (row0+i)*stride+(h+1)*hd]
				for j := range q {
					q[j] = qi[j] * l.attnScale
				}
				mx := float32(math.Inf(-1))
				for j := 0; j < n; j++ {
					kj := ws.qkv[(row0+j)*stride+dIn+h*hd : (row0+j)*stride+dIn+(h+1)*hd]
					v := dot(q, kj)
					ws.logits[j] = v
					mx = max(mx, v)
				}
				var sum float32
				for j := 0; j < n; j++ {
					e := float32(math.Exp(float64(ws.logits[j] - mx)))
					ws.logits[j] = e
					sum += e
				}
				o := ws.att[(row0+i)*dIn+h*hd : (row0+i)*dIn+(h+1)*hd]
				clear(o)
				for j := 0; j < n; j++ {
					vj := ws.qkv[(row0+j)*stride+2*dIn+h*hd : (row0+j)*stride+2*dIn+(h+1)*hd]
					axpy(ws.logits[j]/sum, vj, o)
				}
			}
		}
		row0 += n
	}
}

func layerNorm(dst, x []float32, rows, d int, scale, bias []float32, eps float32) {
	for r := 0; r < rows; r++ {
		xr := x[r*d : (r+1)*d]
		o := dst[r*d : (r+1)*d]
		var sum float32
		for _, v := range xr {
			sum += v
		}
		mean := sum / float32(d)
		var sq float32
		for _, v := range xr {
			c := v - mean
			sq += c * c
		}
		inv := float32(1 / math.Sqrt(float64(sq/float32(d)+eps)))
		for j, v := range xr {
			o[j] = scale[j]*inv*(v-mean) + bias[j]
		}
	}
}

func addBias(x, b []float32) {
	for i := 0; i < len(x); i += len(b) {
		r := x[i : i+len(b)]
		for j, v := range b {
			r[j] += v
		}
	}
}

func add(dst, x []float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] += v
	}
}
