// Copyright 2025 The Freshen Authors.

// Package vecmath holds the float32 numeric kernels behind freshen's pure-Go
// transformer forward pass: dense matrix multiplication (MatMul, MatMulAdd)
// and the level-1 helpers Dot and Axpy.
//
// All matrices are dense, row-major float32 slices with no padding between
// rows: element (i, j) of an r x c matrix x is x[i*c+j]. A typical call is an
// activation matrix A [m x k] (m = tokens) times a weight matrix B [k x n].
//
// On amd64 machines with AVX2 and FMA (detected at start-up through
// golang.org/x/sys/cpu) the work is done by register-blocked Go assembly
// micro-kernels; everywhere else, and in any build with the purego tag, a
// portable pure-Go implementation is used. Both produce the same results up
// to float32 rounding (the order of additions differs).
//
// Functions check slice lengths once on entry and panic with a descriptive
// message if a slice is shorter than the shape requires; unlike the built-in
// copy they never silently truncate. Callers must therefore pass slices of at
// least the documented length. Longer slices are fine: only the leading
// elements are read or written.
//
// Rules for code in this package:
//
//   - Never allocate in the hot paths. Scratch space for packing panels of B
//     comes from a sync.Pool and is reused; the kernels themselves touch only
//     the caller's slices and the stack.
//   - Never depend on cgo or on a GOEXPERIMENT: the default `go build` must be
//     fast on AVX2 machines, and `go test -tags purego` must exercise the
//     pure-Go fallback.
//   - Never start goroutines: callers decide how to parallelise (for example
//     by splitting the rows of A), so every function is safe for concurrent
//     use on disjoint outputs.
package vecmath
