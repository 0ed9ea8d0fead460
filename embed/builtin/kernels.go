package builtin

// Temporary portable kernels; replaced by internal/vecmath.
func matmul(dst, a, b []float32, m, k, n int) {
	clear(dst[:m*n])
	for i := 0; i < m; i++ {
		c := dst[i*n : (i+1)*n]
		for p := 0; p < k; p++ {
			axpy(a[i*k+p], b[p*n:(p+1)*n], c)
		}
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
