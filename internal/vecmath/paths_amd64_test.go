// Copyright 2025 The Freshen Authors.

//go:build amd64 && !purego

package vecmath

// archImpls returns the two AVX2 paths, forced, so that both are checked on
// every shape whatever m is (MatMul itself picks one by m). Empty when the
// CPU lacks AVX2/FMA.
func archImpls() []matMulImpl {
	if !useAsm {
		return nil
	}
	return []matMulImpl{
		{"avx2-direct", func(dst, a, b []float32, m, k, n int, add bool) {
			matMulAVX2(dst, a, b, m, k, n, add, false)
		}},
		{"avx2-packed", func(dst, a, b []float32, m, k, n int, add bool) {
			matMulAVX2(dst, a, b, m, k, n, add, true)
		}},
	}
}
