// Copyright 2025 The Freshen Authors.

package vecmath

import (
	"fmt"
	"unsafe"
)

// MatMul computes dst = a · b, where a is an m x k matrix, b is a k x n
// matrix and dst is an m x n matrix, all dense and row-major.
//
// The first m*n elements of dst are overwritten (when k == 0 they are set to
// zero). dst must not share memory with a or b; a and b may alias each other.
//
// MatMul panics if m, k or n is negative, if len(a) < m*k, len(b) < k*n or
// len(dst) < m*n, or if dst overlaps a or b. Callers must pass slices of at
// least these lengths; nothing is silently truncated.
func MatMul(dst, a, b []float32, m, k, n int) {
	checkMatMul("MatMul", dst, a, b, m, k, n)
	matMul(dst, a, b, m, k, n, false)
}

// MatMulAdd computes dst += a · b, where a is an m x k matrix, b is a k x n
// matrix and dst is an m x n matrix, all dense and row-major.
//
// The first m*n elements of dst are read and updated in place. dst must not
// share memory with a or b; a and b may alias each other.
//
// MatMulAdd panics if m, k or n is negative, if len(a) < m*k, len(b) < k*n or
// len(dst) < m*n, or if dst overlaps a or b. Callers must pass slices of at
// least these lengths; nothing is silently truncated.
func MatMulAdd(dst, a, b []float32, m, k, n int) {
	checkMatMul("MatMulAdd", dst, a, b, m, k, n)
	matMul(dst, a, b, m, k, n, true)
}

// Dot returns the inner product sum(a[i]*b[i]), accumulated in float32.
//
// Dot panics if len(a) != len(b). a and b may alias.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("vecmath.Dot: len(a) = %d != len(b) = %d", len(a), len(b)))
	}
	return dot(a, b)
}

// Axpy computes y[i] += alpha*x[i] for every i.
//
// Axpy panics if len(x) != len(y). x and y may be the same slice (y is then
// scaled by 1+alpha) but must not otherwise overlap.
func Axpy(alpha float32, x, y []float32) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("vecmath.Axpy: len(x) = %d != len(y) = %d", len(x), len(y)))
	}
	axpy(alpha, x, y)
}

// checkMatMul validates the shape arguments of MatMul and MatMulAdd.
func checkMatMul(fn string, dst, a, b []float32, m, k, n int) {
	if m < 0 || k < 0 || n < 0 {
		panic(fmt.Sprintf("vecmath.%s: negative dimension (m=%d, k=%d, n=%d)", fn, m, k, n))
	}
	mk, okA := mulNoOverflow(m, k)
	kn, okB := mulNoOverflow(k, n)
	mn, okD := mulNoOverflow(m, n)
	if !okA || !okB || !okD {
		panic(fmt.Sprintf("vecmath.%s: dimensions overflow int (m=%d, k=%d, n=%d)", fn, m, k, n))
	}
	if len(a) < mk {
		panic(fmt.Sprintf("vecmath.%s: len(a) = %d, need m*k = %d*%d = %d", fn, len(a), m, k, mk))
	}
	if len(b) < kn {
		panic(fmt.Sprintf("vecmath.%s: len(b) = %d, need k*n = %d*%d = %d", fn, len(b), k, n, kn))
	}
	if len(dst) < mn {
		panic(fmt.Sprintf("vecmath.%s: len(dst) = %d, need m*n = %d*%d = %d", fn, len(dst), m, n, mn))
	}
	if overlaps(dst[:mn], a[:mk]) {
		panic(fmt.Sprintf("vecmath.%s: dst overlaps a", fn))
	}
	if overlaps(dst[:mn], b[:kn]) {
		panic(fmt.Sprintf("vecmath.%s: dst overlaps b", fn))
	}
}

// mulNoOverflow returns x*y for non-negative x and y, and whether the
// product fits in an int.
func mulNoOverflow(x, y int) (int, bool) {
	if x == 0 || y == 0 {
		return 0, true
	}
	p := x * y
	return p, p/y == x
}

// overlaps reports whether the memory of x and y intersects.
func overlaps(x, y []float32) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	x0 := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	y0 := uintptr(unsafe.Pointer(unsafe.SliceData(y)))
	x1 := x0 + uintptr(len(x))*4
	y1 := y0 + uintptr(len(y))*4
	return x0 < y1 && y0 < x1
}
