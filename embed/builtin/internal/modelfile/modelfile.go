// Package modelfile reads and writes the built-in model's weight files: the
// TF.js graph-model layout it is converted from (model.json plus binary
// shards) and the compact file that is embedded in the freshen binary.
//
// Every reader returns an error, never panics, on missing, truncated or
// inconsistent data: the bytes may come from a damaged checkout.
package modelfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
)

// DType is a tensor's element type in a model file.
type DType uint8

const (
	Float32 DType = 1
	// Float16 is IEEE 754 binary16, stored little-endian. Weights are
	// rounded to it on conversion (round to nearest even) and widened to
	// float32 on load.
	Float16 DType = 2
)

// Tensor is a named float32 tensor in row-major order.
type Tensor struct {
	Name  string
	Shape []int
	// Stored is the element type in the file; Data is always float32.
	Stored DType
	Data   []float32
}

// Piece is one entry of the tokenizer's vocabulary.
type Piece struct {
	Text  string
	Score float64
}

// File is the content of an embedded model file.
type File struct {
	Vocab   []Piece
	Tensors map[string]*Tensor
}

var magic = [8]byte{'F', 'R', 'S', 'H', 'M', 'D', 'L', '1'}

// Write encodes f deterministically: the same File always yields the same
// bytes (tensors are written sorted by name). The last 32 bytes are the
// SHA-256 of everything before them, so truncation and corruption are
// detected on load.
func Write(w io.Writer, f *File) error {
	var buf bytes.Buffer
	buf.Write(magic[:])
	le := binary.LittleEndian
	put32 := func(v uint32) { buf.Write(le.AppendUint32(nil, v)) }
	putStr := func(s string) { put32(uint32(len(s))); buf.WriteString(s) }
	put32(uint32(len(f.Vocab)))
	for _, p := range f.Vocab {
		buf.Write(le.AppendUint64(nil, math.Float64bits(p.Score)))
		putStr(p.Text)
	}
	names := make([]string, 0, len(f.Tensors))
	for n := range f.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	put32(uint32(len(names)))
	for _, n := range names {
		t := f.Tensors[n]
		if t.Name != n {
			return fmt.Errorf("modelfile: tensor %q stored under name %q", t.Name, n)
		}
		if numel(t.Shape) != len(t.Data) {
			return fmt.Errorf("modelfile: tensor %q: shape %v does not match %d values", n, t.Shape, len(t.Data))
		}
		putStr(n)
		buf.WriteByte(byte(t.Stored))
		put32(uint32(len(t.Shape)))
		for _, d := range t.Shape {
			put32(uint32(d))
		}
		switch t.Stored {
		case Float32:
			for _, v := range t.Data {
				buf.Write(le.AppendUint32(nil, math.Float32bits(v)))
			}
		case Float16:
			for _, v := range t.Data {
				buf.Write(le.AppendUint16(nil, F32ToF16(v)))
			}
		default:
			return fmt.Errorf("modelfile: tensor %q: unknown dtype %d", n, t.Stored)
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	_, err := w.Write(buf.Bytes())
	return err
}

// ErrCorrupt is wrapped by every Read error caused by the bytes themselves.
var ErrCorrupt = errors.New("corrupt model file")

// Read decodes a file written by Write.
func Read(b []byte) (*File, error) {
	if len(b) < len(magic)+32 {
		return nil, fmt.Errorf("modelfile: %w: %d bytes is too short", ErrCorrupt, len(b))
	}
	if !bytes.Equal(b[:len(magic)], magic[:]) {
		return nil, fmt.Errorf("modelfile: %w: bad magic %q", ErrCorrupt, b[:len(magic)])
	}
	body, sum := b[:len(b)-32], b[len(b)-32:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("modelfile: %w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	r := reader{b: body, off: len(magic)}
	f := &File{Tensors: map[string]*Tensor{}}
	nv := r.u32()
	if nv > 1<<20 {
		return nil, fmt.Errorf("modelfile: %w: vocabulary of %d pieces", ErrCorrupt, nv)
	}
	f.Vocab = make([]Piece, 0, nv)
	for i := 0; i < int(nv) && r.err == nil; i++ {
		score := math.Float64frombits(r.u64())
		f.Vocab = append(f.Vocab, Piece{Text: r.str(), Score: score})
	}
	nt := r.u32()
	for i := 0; i < int(nt) && r.err == nil; i++ {
		t := &Tensor{Name: r.str(), Stored: DType(r.u8())}
		nd := r.u32()
		if nd > 8 {
			return nil, fmt.Errorf("modelfile: %w: tensor %q has %d dims", ErrCorrupt, t.Name, nd)
		}
		for j := 0; j < int(nd); j++ {
			t.Shape = append(t.Shape, int(r.u32()))
		}
		n := numel(t.Shape)
		switch t.Stored {
		case Float32:
			raw := r.bytes(4 * n)
			if raw != nil {
				t.Data = make([]float32, n)
				for j := range t.Data {
					t.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
				}
			}
		case Float16:
			raw := r.bytes(2 * n)
			if raw != nil {
				t.Data = make([]float32, n)
				for j := range t.Data {
					t.Data[j] = F16ToF32(binary.LittleEndian.Uint16(raw[2*j:]))
				}
			}
		default:
			return nil, fmt.Errorf("modelfile: %w: tensor %q has unknown dtype %d", ErrCorrupt, t.Name, t.Stored)
		}
		f.Tensors[t.Name] = t
	}
	if r.err != nil {
		return nil, fmt.Errorf("modelfile: %w: %v", ErrCorrupt, r.err)
	}
	if r.off != len(body) {
		return nil, fmt.Errorf("modelfile: %w: %d trailing bytes", ErrCorrupt, len(body)-r.off)
	}
	return f, nil
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.off+n > len(r.b) {
		r.err = fmt.Errorf("need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8() uint8 {
	if p := r.bytes(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.bytes(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.bytes(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) str() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt32/d) {
			return -1
		}
		n *= d
	}
	return n
}

// tfjsModel is the subset of a TF.js graph model's model.json that matters
// here: where the weights are and how they are laid out.
type tfjsModel struct {
	WeightsManifest []struct {
		Paths   []string `json:"paths"`
		Weights []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			DType string `json:"dtype"`
		} `json:"weights"`
	} `json:"weightsManifest"`
}

// ReadTFJS reads every float32 weight of the TF.js graph model whose
// model.json is at name in fsys; the shards are resolved relative to it.
// Integer constants are skipped: the forward pass hard-codes the
// architecture they describe. A missing or short shard is an error.
func ReadTFJS(fsys fs.FS, name string) (map[string]*Tensor, error) {
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("modelfile: read %s: %w", name, err)
	}
	var m tfjsModel
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("modelfile: parse %s: %w", name, err)
	}
	out := map[string]*Tensor{}
	dir := path.Dir(name)
	for gi, g := range m.WeightsManifest {
		var data []byte
		for _, p := range g.Paths {
			shard, err := fs.ReadFile(fsys, path.Join(dir, p))
			if err != nil {
				return nil, fmt.Errorf("modelfile: weight group %d: %w", gi, err)
			}
			data = append(data, shard...)
		}
		off := 0
		for _, w := range g.Weights {
			n := numel(w.Shape)
			if n < 0 {
				return nil, fmt.Errorf("modelfile: weight %q: bad shape %v", w.Name, w.Shape)
			}
			size := 4 * n
			if w.DType != "float32" && w.DType != "int32" {
				return nil, fmt.Errorf("modelfile: weight %q: unsupported dtype %q", w.Name, w.DType)
			}
			if off+size > len(data) {
				return nil, fmt.Errorf("modelfile: weight %q: shards hold %d bytes, need %d: %w", w.Name, len(data), off+size, ErrCorrupt)
			}
			if w.DType == "float32" {
				t := &Tensor{Name: w.Name, Shape: append([]int(nil), w.Shape...), Stored: Float32, Data: make([]float32, n)}
				for j := range t.Data {
					t.Data[j] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*j:]))
				}
				out[w.Name] = t
			}
			off += size
		}
		if off != len(data) {
			return nil, fmt.Errorf("modelfile: weight group %d: %d bytes of shards left over: %w", gi, len(data)-off, ErrCorrupt)
		}
	}
	return out, nil
}
