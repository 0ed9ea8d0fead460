// Copyright 2025 The Freshen Authors.

//go:build ignore

// gen_kernels writes kernels_amd64.s, the AVX2+FMA micro-kernels used by
// MatMul on amd64. Run it with `go generate ./internal/vecmath/`.
//
// Every kernel computes one register tile of C = A·B (or C += A·B):
//
//	C[r][j] (+)= sum_{p<k} A[r*lda+p] * B[p*ldb+j]   for r < R, j < W
//
// with R in 1..6 rows and W = 16, 8, or a masked 1..7 columns. A, B and C are
// addressed with arbitrary row strides, so the same kernel serves packed B
// panels (ldb = 16) and B read in place (ldb = n).
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

const maxRows = 6

var buf bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&buf, format+"\n", args...) }

// aAddr returns the address of A[row][p] + off bytes, where SI points at
// rows 0..2 and R9 at rows 3..5, and R8 holds lda in bytes.
func aAddr(row, off int) string {
	base := "SI"
	if row >= 3 {
		base = "R9"
		row -= 3
	}
	switch row {
	case 0:
		return fmt.Sprintf("%d(%s)", off, base)
	case 1:
		return fmt.Sprintf("%d(%s)(R8*1)", off, base)
	default:
		return fmt.Sprintf("%d(%s)(R8*2)", off, base)
	}
}

// bAddr returns the address of B[u][0] + off bytes for u in 0..3, where DI
// points at row 0, R10 holds ldb in bytes and R11 holds 3*ldb.
func bAddr(u, off int) string {
	switch u {
	case 0:
		return fmt.Sprintf("%d(DI)", off)
	case 1:
		return fmt.Sprintf("%d(DI)(R10*1)", off)
	case 2:
		return fmt.Sprintf("%d(DI)(R10*2)", off)
	default:
		return fmt.Sprintf("%d(DI)(R11*1)", off)
	}
}

// cAddr returns the address of C[row][0] + off bytes, where BX points at
// rows 0..2 and R13 at rows 3..5, and R12 holds ldc in bytes.
func cAddr(row, off int) string {
	base := "BX"
	if row >= 3 {
		base = "R13"
		row -= 3
	}
	switch row {
	case 0:
		return fmt.Sprintf("%d(%s)", off, base)
	case 1:
		return fmt.Sprintf("%d(%s)(R12*1)", off, base)
	default:
		return fmt.Sprintf("%d(%s)(R12*2)", off, base)
	}
}

type shape int

const (
	wide16 shape = iota // 16 columns: two YMM per row
	wide8               // 8 columns: one YMM per row
	masked              // 1..7 columns: one masked YMM per row
)

// acc returns the accumulator register for row r, vector v.
func acc(s shape, r, v int) string {
	if s == wide16 {
		return fmt.Sprintf("Y%d", 2*r+v)
	}
	return fmt.Sprintf("Y%d", r)
}

func kernel(rows int, s shape) {
	name := fmt.Sprintf("kern%dx16", rows)
	vecs := 2
	switch s {
	case wide8:
		name = fmt.Sprintf("kern%dx8", rows)
		vecs = 1
	case masked:
		name = fmt.Sprintf("kern%dx8m", rows)
		vecs = 1
	}
	frame := 64
	if s == masked {
		frame = 72
	}
	p("")
	if s == masked {
		p("// func %s(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, acc int, cols int)", name)
	} else {
		p("// func %s(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, acc int)", name)
	}
	p("TEXT ·%s(SB), NOSPLIT, $0-%d", name, frame)
	p("\tMOVQ a+0(FP), SI")
	p("\tMOVQ lda+8(FP), R8")
	p("\tSHLQ $2, R8")
	if rows > 3 {
		p("\tLEAQ (SI)(R8*2), R9")
		p("\tADDQ R8, R9")
	}
	p("\tMOVQ b+16(FP), DI")
	p("\tMOVQ ldb+24(FP), R10")
	p("\tSHLQ $2, R10")
	p("\tLEAQ (R10)(R10*2), R11")
	p("\tMOVQ k+48(FP), CX")
	p("\tMOVQ CX, DX")
	p("\tSHRQ $2, CX")
	p("\tANDQ $3, DX")
	if s == masked {
		// Mask for the first cols lanes: 8 int32 loaded from maskTab<>+(8-cols)*4.
		p("\tMOVQ cols+64(FP), AX")
		p("\tNEGQ AX")
		p("\tLEAQ maskTab<>+32(SB), R12")
		p("\tVMOVDQU (R12)(AX*4), Y13")
	}
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			a := acc(s, r, v)
			p("\tVXORPS %s, %s, %s", a, a, a)
		}
	}

	body := func(u int) {
		switch s {
		case wide16:
			p("\tVMOVUPS %s, Y12", bAddr(u, 0))
			p("\tVMOVUPS %s, Y13", bAddr(u, 32))
		case wide8:
			p("\tVMOVUPS %s, Y12", bAddr(u, 0))
		case masked:
			p("\tVMASKMOVPS %s, Y13, Y12", bAddr(u, 0))
		}
		for r := 0; r < rows; r++ {
			p("\tVBROADCASTSS %s, Y14", aAddr(r, 4*u))
			p("\tVFMADD231PS Y12, Y14, %s", acc(s, r, 0))
			if s == wide16 {
				p("\tVFMADD231PS Y13, Y14, %s", acc(s, r, 1))
			}
		}
	}
	advanceA := func(bytes int) {
		p("\tADDQ $%d, SI", bytes)
		if rows > 3 {
			p("\tADDQ $%d, R9", bytes)
		}
	}

	p("\tTESTQ CX, CX")
	p("\tJZ %s_tail", name)
	p("%s_loop4:", name)
	for u := 0; u < 4; u++ {
		body(u)
	}
	advanceA(16)
	p("\tLEAQ (DI)(R10*4), DI")
	p("\tDECQ CX")
	p("\tJNZ %s_loop4", name)

	p("%s_tail:", name)
	p("\tTESTQ DX, DX")
	p("\tJZ %s_store", name)
	p("%s_loop1:", name)
	body(0)
	advanceA(4)
	p("\tADDQ R10, DI")
	p("\tDECQ DX")
	p("\tJNZ %s_loop1", name)

	p("%s_store:", name)
	p("\tMOVQ c+32(FP), BX")
	p("\tMOVQ ldc+40(FP), R12")
	p("\tSHLQ $2, R12")
	if rows > 3 {
		p("\tLEAQ (BX)(R12*2), R13")
		p("\tADDQ R12, R13")
	}
	p("\tMOVQ acc+56(FP), AX")
	p("\tTESTQ AX, AX")
	p("\tJZ %s_write", name)
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			a := acc(s, r, v)
			if s == masked {
				p("\tVMASKMOVPS %s, Y13, Y12", cAddr(r, 0))
				p("\tVADDPS Y12, %s, %s", a, a)
			} else {
				p("\tVADDPS %s, %s, %s", cAddr(r, 32*v), a, a)
			}
		}
	}
	p("%s_write:", name)
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			if s == masked {
				p("\tVMASKMOVPS %s, Y13, %s", acc(s, r, v), cAddr(r, 0))
			} else {
				p("\tVMOVUPS %s, %s", acc(s, r, v), cAddr(r, 32*v))
			}
		}
	}
	p("\tVZEROUPPER")
	p("\tRET")
}

func main() {
	p("// Code generated by gen_kernels.go; DO NOT EDIT.")
	p("")
	p("//go:build amd64 && !purego")
	p("")
	p("#include \"textflag.h\"")
	p("")
	p("// maskTab<>+(8-n)*4 holds 8 int32 lanes whose first n are all ones.")
	for i := 0; i < 16; i++ {
		v := "0xffffffff"
		if i >= 8 {
			v = "0x00000000"
		}
		p("DATA maskTab<>+%d(SB)/4, $%s", 4*i, v)
	}
	p("GLOBL maskTab<>(SB), RODATA|NOPTR, $64")
	for _, s := range []shape{wide16, wide8, masked} {
		for r := 1; r <= maxRows; r++ {
			kernel(r, s)
		}
	}
	if err := os.WriteFile("kernels_amd64.s", buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
