// Copyright 2025 The Freshen Authors.

//go:build !amd64 || purego

package vecmath

// useAsm reports whether the assembly kernels are in use; never in this build.
const useAsm = false

func matMul(dst, a, b []float32, m, k, n int, add bool) {
	matMulGeneric(dst, a, b, m, k, n, add)
}

func dot(a, b []float32) float32 { return dotGeneric(a, b) }

func axpy(alpha float32, x, y []float32) { axpyGeneric(alpha, x, y) }
