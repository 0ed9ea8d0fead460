// Copyright 2025 The Freshen Authors.

package vecmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// matMulImpl is one implementation of dst (+)= a·b; see paths_*_test.go for
// the list tested on the current build.
type matMulImpl struct {
	name string
	fn   func(dst, a, b []float32, m, k, n int, add bool)
}

// allImpls returns the public entry points plus every internal path.
func allImpls() []matMulImpl {
	impls := []matMulImpl{
		{"MatMul", func(dst, a, b []float32, m, k, n int, add bool) {
			if add {
				MatMulAdd(dst, a, b, m, k, n)
			} else {
				MatMul(dst, a, b, m, k, n)
			}
		}},
		{"generic", matMulGeneric},
	}
	return append(impls, archImpls()...)
}

// tol is the relative tolerance, measured against sum_p |a[i,p]*b[p,j]| (plus
// |dst| for MatMulAdd), i.e. the natural error scale of a float32 dot
// product; it allows for k up to a few thousand terms summed sequentially.
const tol = 1e-5

var shapeDims = []int{1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 64, 100, 255, 257, 512, 1536}

// extraShapes are larger shapes from real encoder layers, beyond the
// m*k*n budget of the cartesian sweep.
var extraShapes = [][3]int{
	{128, 512, 1536},
	{33, 1536, 512},
	{257, 257, 255},
	{100, 256, 768},
	{7, 1536, 1536},
	{300, 64, 1537},
}

func testShapes(t *testing.T) [][3]int {
	budget := 1 << 20
	if testing.Short() {
		budget = 1 << 16
	}
	var shapes [][3]int
	for _, m := range shapeDims {
		for _, k := range shapeDims {
			for _, n := range shapeDims {
				if m*k*n <= budget {
					shapes = append(shapes, [3]int{m, k, n})
				}
			}
		}
	}
	if !testing.Short() {
		shapes = append(shapes, extraShapes...)
	}
	return shapes
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// refMatMul returns c0 + a·b (c0 may be nil) in float64, and for each element
// the error scale |c0| + sum_p |a*b|.
func refMatMul(c0, a, b []float32, m, k, n int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	if c0 != nil {
		for i := range want {
			want[i] = float64(c0[i])
			scale[i] = math.Abs(float64(c0[i]))
		}
	}
	for i := 0; i < m; i++ {
		w := want[i*n : i*n+n]
		s := scale[i*n : i*n+n]
		for p := 0; p < k; p++ {
			av := float64(a[i*k+p])
			br := b[p*n : p*n+n]
			for j, bv := range br {
				prod := av * float64(bv)
				w[j] += prod
				s[j] += math.Abs(prod)
			}
		}
	}
	return want, scale
}

func checkClose(t *testing.T, what string, got []float32, want, scale []float64) {
	t.Helper()
	bad := 0
	for i := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.Abs(g-want[i]) > tol*scale[i]+1e-30 {
			if bad < 3 {
				t.Errorf("%s: element %d = %v, want %v (scale %v)", what, i, got[i], want[i], scale[i])
			}
			bad++
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d mismatched elements in total", what, bad)
	}
}

const guard = 4 // sentinel elements after dst that must stay untouched

func checkGuard(t *testing.T, what string, dst []float32, mn int) {
	t.Helper()
	for i := mn; i < len(dst); i++ {
		if dst[i] != 12345 {
			t.Errorf("%s: wrote past m*n: dst[%d] = %v", what, i, dst[i])
			return
		}
	}
}

func TestMatMulShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	impls := allImpls()
	for _, s := range testShapes(t) {
		m, k, n := s[0], s[1], s[2]
		a := randSlice(r, m*k)
		b := randSlice(r, k*n)
		c0 := randSlice(r, m*n)
		want, scale := refMatMul(nil, a, b, m, k, n)
		wantAdd := make([]float64, m*n)
		scaleAdd := make([]float64, m*n)
		for i := range wantAdd {
			wantAdd[i] = want[i] + float64(c0[i])
			scaleAdd[i] = scale[i] + math.Abs(float64(c0[i]))
		}
		dst := make([]float32, m*n+guard)
		for _, im := range impls {
			// Overwrite: dst starts as NaN, which must never leak through.
			for i := range dst {
				dst[i] = float32(math.NaN())
			}
			for i := m * n; i < len(dst); i++ {
				dst[i] = 12345
			}
			im.fn(dst, a, b, m, k, n, false)
			what := fmt.Sprintf("%s(m=%d,k=%d,n=%d)", im.name, m, k, n)
			checkClose(t, what, dst, want, scale)
			checkGuard(t, what, dst, m*n)

			// Accumulate onto c0.
			copy(dst, c0)
			im.fn(dst, a, b, m, k, n, true)
			what = fmt.Sprintf("%s add(m=%d,k=%d,n=%d)", im.name, m, k, n)
			checkClose(t, what, dst, wantAdd, scaleAdd)
			checkGuard(t, what, dst, m*n)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

func TestMatMulAddAccumulates(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const m, k, n = 37, 300, 45
	a := randSlice(r, m*k)
	b := randSlice(r, k*n)
	once := make([]float32, m*n)
	MatMul(once, a, b, m, k, n)

	// Three MatMulAdd calls on zero must give 3·(a·b).
	dst := make([]float32, m*n)
	for range 3 {
		MatMulAdd(dst, a, b, m, k, n)
	}
	want, scale := refMatMul(nil, a, b, m, k, n)
	for i := range want {
		want[i] *= 3
		scale[i] *= 3
	}
	checkClose(t, "3×MatMulAdd", dst, want, scale)

	// MatMulAdd onto MatMul's result doubles it.
	MatMulAdd(once, a, b, m, k, n)
	for i := range want {
		want[i] = want[i] / 3 * 2
		scale[i] = scale[i] / 3 * 2
	}
	checkClose(t, "MatMul then MatMulAdd", once, want, scale)
}

func TestMatMulZeroK(t *testing.T) {
	for _, im := range allImpls() {
		dst := []float32{1, 2, 3, 4, 5, 6}
		im.fn(dst, nil, nil, 2, 0, 3, true)
		for i, v := range dst {
			if v != float32(i+1) {
				t.Fatalf("%s add with k=0 changed dst: %v", im.name, dst)
			}
		}
		im.fn(dst, nil, nil, 2, 0, 3, false)
		for _, v := range dst {
			if v != 0 {
				t.Fatalf("%s with k=0 did not zero dst: %v", im.name, dst)
			}
		}
		im.fn(nil, nil, nil, 0, 5, 0, false) // empty result: no-op
	}
}

func TestMatMulAliasedInputs(t *testing.T) {
	// a and b may be the same slice (a·a for a square a).
	r := rand.New(rand.NewPCG(5, 6))
	const n = 37
	a := randSlice(r, n*n)
	dst := make([]float32, n*n)
	MatMul(dst, a, a, n, n, n)
	want, scale := refMatMul(nil, a, a, n, n, n)
	checkClose(t, "a·a", dst, want, scale)
}

func TestMatMulLongerSlices(t *testing.T) {
	// Longer inputs are allowed; only the leading m*k and k*n are read.
	r := rand.New(rand.NewPCG(7, 8))
	const m, k, n = 9, 20, 18
	a := randSlice(r, m*k+50)
	b := randSlice(r, k*n+50)
	dst := make([]float32, m*n+guard)
	for i := m * n; i < len(dst); i++ {
		dst[i] = 12345
	}
	MatMul(dst, a, b, m, k, n)
	want, scale := refMatMul(nil, a[:m*k], b[:k*n], m, k, n)
	checkClose(t, "longer slices", dst, want, scale)
	checkGuard(t, "longer slices", dst, m*n)
}

func expectPanic(t *testing.T, name, contains string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Errorf("%s: did not panic", name)
			return
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, contains) {
			t.Errorf("%s: panic %q does not mention %q", name, msg, contains)
		}
	}()
	f()
}

func TestLengthPanics(t *testing.T) {
	const m, k, n = 4, 5, 6
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	dst := make([]float32, m*n)
	for _, fn := range []struct {
		name string
		f    func(dst, a, b []float32, m, k, n int)
	}{{"MatMul", MatMul}, {"MatMulAdd", MatMulAdd}} {
		expectPanic(t, fn.name+" short a", "len(a)", func() { fn.f(dst, a[:m*k-1], b, m, k, n) })
		expectPanic(t, fn.name+" short b", "len(b)", func() { fn.f(dst, a, b[:k*n-1], m, k, n) })
		expectPanic(t, fn.name+" short dst", "len(dst)", func() { fn.f(dst[:m*n-1], a, b, m, k, n) })
		expectPanic(t, fn.name+" nil dst", "len(dst)", func() { fn.f(nil, a, b, m, k, n) })
		expectPanic(t, fn.name+" negative m", "negative", func() { fn.f(dst, a, b, -1, k, n) })
		expectPanic(t, fn.name+" negative k", "negative", func() { fn.f(dst, a, b, m, -1, n) })
		expectPanic(t, fn.name+" negative n", "negative", func() { fn.f(dst, a, b, m, k, -1) })
		expectPanic(t, fn.name+" overflow", "overflow", func() { fn.f(dst, a, b, math.MaxInt/2, 3, 1) })
		big := make([]float32, 2*m*n+k*n)
		expectPanic(t, fn.name+" dst overlaps a", "overlaps a", func() { fn.f(big[m*n/2:], big[:m*k], b, m, k, n) })
		expectPanic(t, fn.name+" dst overlaps b", "overlaps b", func() { fn.f(big[:m*n], a, big[m*n-1:], m, k, n) })
	}
	expectPanic(t, "Dot", "len(a)", func() { Dot(make([]float32, 3), make([]float32, 4)) })
	expectPanic(t, "Axpy", "len(x)", func() { Axpy(1, make([]float32, 4), make([]float32, 3)) })
}

var vecLengths = func() []int {
	var l []int
	for i := 0; i <= 70; i++ {
		l = append(l, i)
	}
	return append(l, 255, 256, 257, 1535, 1536, 1537, 4099)
}()

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range vecLengths {
		a := randSlice(r, n)
		b := randSlice(r, n)
		var want, scale float64
		for i := range a {
			p := float64(a[i]) * float64(b[i])
			want += p
			scale += math.Abs(p)
		}
		for _, f := range []struct {
			name string
			fn   func(a, b []float32) float32
		}{{"Dot", Dot}, {"dotGeneric", dotGeneric}} {
			got := float64(f.fn(a, b))
			if math.Abs(got-want) > tol*scale+1e-30 {
				t.Errorf("%s(n=%d) = %v, want %v (scale %v)", f.name, n, got, want, scale)
			}
		}
	}
	// Exact small case.
	if got := Dot([]float32{1, 2, 3}, []float32{4, 5, 6}); got != 32 {
		t.Errorf("Dot([1 2 3],[4 5 6]) = %v, want 32", got)
	}
}

func TestAxpy(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range vecLengths {
		x := randSlice(r, n)
		y0 := randSlice(r, n+guard)
		for i := n; i < len(y0); i++ {
			y0[i] = 12345
		}
		alpha := r.Float32()*4 - 2
		for _, f := range []struct {
			name string
			fn   func(alpha float32, x, y []float32)
		}{{"Axpy", Axpy}, {"axpyGeneric", axpyGeneric}} {
			y := append([]float32(nil), y0...)
			f.fn(alpha, x, y[:n])
			for i := 0; i < n; i++ {
				want := float64(y0[i]) + float64(alpha)*float64(x[i])
				scale := math.Abs(float64(y0[i])) + math.Abs(float64(alpha)*float64(x[i]))
				if math.Abs(float64(y[i])-want) > tol*scale+1e-30 {
					t.Fatalf("%s(n=%d): y[%d] = %v, want %v", f.name, n, i, y[i], want)
				}
			}
			checkGuard(t, f.name, y, n)
		}
	}
	// x and y may be the same slice.
	y := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	Axpy(1, y, y)
	for i, v := range y {
		if v != float32(2*(i+1)) {
			t.Fatalf("Axpy(1, y, y) = %v", y)
		}
	}
}

func TestMatMulNoAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for _, s := range [][3]int{{8, 512, 1536}, {64, 512, 768}, {33, 300, 77}} {
		m, k, n := s[0], s[1], s[2]
		a := randSlice(r, m*k)
		b := randSlice(r, k*n)
		dst := make([]float32, m*n)
		allocs := testing.AllocsPerRun(20, func() { MatMul(dst, a, b, m, k, n) })
		if allocs != 0 {
			t.Errorf("MatMul(m=%d,k=%d,n=%d) allocates %v times per call", m, k, n, allocs)
		}
	}
	x := randSlice(r, 1000)
	y := randSlice(r, 1000)
	if allocs := testing.AllocsPerRun(20, func() { Dot(x, y); Axpy(0.5, x, y) }); allocs != 0 {
		t.Errorf("Dot+Axpy allocate %v times per call", allocs)
	}
}

// Benchmarks. GFLOP/s counts 2*m*k*n floating-point operations per call.

var benchShapes = [][3]int{{8, 512, 1536}, {128, 512, 1536}, {128, 1536, 512}}

func benchMatMul(b *testing.B, fn func(dst, a, bm []float32, m, k, n int, add bool), m, k, n int) {
	r := rand.New(rand.NewPCG(15, 16))
	a := randSlice(r, m*k)
	bm := randSlice(r, k*n)
	dst := make([]float32, m*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fn(dst, a, bm, m, k, n, false)
	}
	b.ReportMetric(2*float64(m)*float64(k)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMul(b *testing.B) {
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		for _, im := range benchImpls() {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", im.name, m, k, n), func(b *testing.B) {
				benchMatMul(b, im.fn, m, k, n)
			})
		}
	}
}

// benchImpls is the public MatMul (whatever it dispatches to) and the
// pure-Go fallback, plus arch-specific paths.
func benchImpls() []matMulImpl {
	return append([]matMulImpl{
		{"MatMul", func(dst, a, b []float32, m, k, n int, _ bool) { MatMul(dst, a, b, m, k, n) }},
		{"generic", matMulGeneric},
	}, archImpls()...)
}

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(17, 18))
	x := randSlice(r, 1536)
	y := randSlice(r, 1536)
	var s float32
	for i := 0; i < b.N; i++ {
		s += Dot(x, y)
	}
	b.ReportMetric(2*1536*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	_ = s
}

func BenchmarkAxpy(b *testing.B) {
	r := rand.New(rand.NewPCG(19, 20))
	x := randSlice(r, 1536)
	y := randSlice(r, 1536)
	for i := 0; i < b.N; i++ {
		Axpy(1e-9, x, y)
	}
	b.ReportMetric(2*1536*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
