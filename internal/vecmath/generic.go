// Copyright 2025 The Freshen Authors.

package vecmath

// The portable implementations. They are compiled on every platform: the
// purego / non-amd64 build uses them directly, the amd64 build uses them for
// short tails and on CPUs without AVX2+FMA, and the tests and benchmarks
// compare against them.
//
// Go's compiler does not auto-vectorise, so these are written to keep the
// inner loops free of bounds checks and to reuse each loaded value several
// times: MatMul is an i-k-j loop unrolled 4 ways over k, so every pass over a
// row of dst applies four rows of b.

// matMulGeneric computes dst = a·b (add == false) or dst += a·b (add ==
// true) for row-major a [m x k], b [k x n], dst [m x n]. Lengths are assumed
// to have been checked.
func matMulGeneric(dst, a, b []float32, m, k, n int, add bool) {
	if m == 0 || n == 0 {
		return
	}
	for i := 0; i < m; i++ {
		c := dst[i*n : i*n+n]
		if !add {
			clear(c)
		}
		ar := a[i*k : i*k+k]
		p := 0
		for ; p+4 <= k; p += 4 {
			a0, a1, a2, a3 := ar[p], ar[p+1], ar[p+2], ar[p+3]
			b0 := b[p*n : p*n+n]
			b1 := b[(p+1)*n : (p+1)*n+n]
			b2 := b[(p+2)*n : (p+2)*n+n]
			b3 := b[(p+3)*n : (p+3)*n+n]
			// Reslicing to len(c) lets the compiler drop the bounds checks.
			b0, b1, b2, b3 = b0[:len(c)], b1[:len(c)], b2[:len(c)], b3[:len(c)]
			for j := range c {
				c[j] += a0*b0[j] + a1*b1[j] + a2*b2[j] + a3*b3[j]
			}
		}
		for ; p < k; p++ {
			axpyGeneric(ar[p], b[p*n:p*n+n], c)
		}
	}
}

// dotGeneric returns sum(a[i]*b[i]); len(b) must be >= len(a).
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGeneric computes y[i] += alpha*x[i]; len(y) must be >= len(x).
func axpyGeneric(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += alpha * x[i]
		y[i+1] += alpha * x[i+1]
		y[i+2] += alpha * x[i+2]
		y[i+3] += alpha * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}
