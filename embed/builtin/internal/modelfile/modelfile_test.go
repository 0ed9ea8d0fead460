package modelfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/fstest"
)

func TestF16(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},                  // largest half
		{65520, 0x7c00},                  // rounds up to infinity
		{1e9, 0x7c00},                    // overflow
		{float32(math.Inf(-1)), 0xfc00},  //
		{6.103515625e-05, 0x0400},        // smallest normal
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: ties to even, down
		{1 + 1.0/2048, 0x3c00},           // tie, rounds to even (down)
		{1 + 3.0/2048, 0x3c02},           // tie, rounds to even (up)
		{0.333333343267, 0x3555},         //
		{1e-10, 0x0000},                  // underflow
	}
	for _, c := range cases {
		if got := F32ToF16(c.in); got != c.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN -> %#04x", h)
	}
	// Every finite half survives the round trip exactly.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if back := F32ToF16(F16ToF32(uint16(h))); back != uint16(h) {
			t.Fatalf("round trip of %#04x gave %#04x (%g)", h, back, F16ToF32(uint16(h)))
		}
	}
}

func sample() *File {
	return &File{
		Vocab: []Piece{{"<unk>", 0}, {"▁the", -3.5}, {"s", -1.25}},
		Tensors: map[string]*Tensor{
			"w": {Name: "w", Shape: []int{2, 3}, Stored: Float16, Data: []float32{1, -2, 0.5, 0.25, 3, -4}},
			"b": {Name: "b", Shape: []int{3}, Stored: Float32, Data: []float32{0.1, 0.2, 0.3}},
		},
	}
}

func TestWriteReadDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, sample()); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, sample()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("Write is not deterministic")
	}
	f, err := Read(a.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Vocab) != 3 || f.Vocab[1] != (Piece{"▁the", -3.5}) {
		t.Errorf("vocab = %v", f.Vocab)
	}
	if got := f.Tensors["b"].Data; got[1] != 0.2 {
		t.Errorf("b = %v", got)
	}
	if got := f.Tensors["w"].Data; got[5] != -4 || f.Tensors["w"].Stored != Float16 {
		t.Errorf("w = %v", got)
	}
	// Every truncation is an error, never a panic.
	for n := 0; n < a.Len(); n++ {
		if _, err := Read(a.Bytes()[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Read of %d/%d bytes: err = %v", n, a.Len(), err)
		}
	}
}

func TestWriteRejectsBadShape(t *testing.T) {
	f := sample()
	f.Tensors["b"].Shape = []int{4}
	if err := Write(&bytes.Buffer{}, f); err == nil {
		t.Fatal("want an error for a shape that does not match the data")
	}
}

func tfjs(shardBytes ...[]byte) fstest.MapFS {
	fs := fstest.MapFS{"m/model.json": {Data: []byte(`{"weightsManifest":[{"paths":["s1","s2"],"weights":[
		{"name":"a","shape":[2,2],"dtype":"float32"},
		{"name":"n","shape":[1],"dtype":"int32"},
		{"name":"c","shape":[2],"dtype":"float32"}]}]}`)}}
	for i, b := range shardBytes {
		fs["m/s"+string(rune('1'+i))] = &fstest.MapFile{Data: b}
	}
	return fs
}

func floats(v ...float32) []byte {
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func TestReadTFJS(t *testing.T) {
	all := append(floats(1, 2, 3, 4), binary.LittleEndian.AppendUint32(nil, 7)...)
	all = append(all, floats(5, 6)...)
	w, err := ReadTFJS(tfjs(all[:12], all[12:]), "m/model.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 2 || w["a"].Data[3] != 4 || w["c"].Data[1] != 6 {
		t.Fatalf("weights = %+v", w)
	}
	for name, fs := range map[string]fstest.MapFS{
		"missing shard":   tfjs(all[:12]),
		"truncated shard": tfjs(all[:12], all[12:len(all)-1]),
		"extra bytes":     tfjs(all[:12], append(all[12:], 0, 0, 0, 0)),
		"no model.json":   {},
	} {
		if _, err := ReadTFJS(fs, "m/model.json"); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	bad := tfjs(all[:12], all[12:])
	bad["m/model.json"] = &fstest.MapFile{Data: []byte(strings.Replace(string(bad["m/model.json"].Data), `"int32"`, `"uint8"`, 1))}
	if _, err := ReadTFJS(bad, "m/model.json"); err == nil {
		t.Error("unsupported dtype: want an error")
	}
}
