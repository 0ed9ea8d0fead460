package builtin

import "github.com/freshen-io/freshen/internal/vecmath"

// The forward pass's float32 kernels: AVX2+FMA assembly on amd64, pure Go
// elsewhere (see internal/vecmath).
func matmul(dst, a, b []float32, m, k, n int) { vecmath.MatMul(dst[:m*n], a[:m*k], b[:k*n], m, k, n) }

func dot(a, b []float32) float32 { return vecmath.Dot(a, b) }

func axpy(alpha float32, x, y []float32) { vecmath.Axpy(alpha, x, y[:len(x)]) }
