// Copyright 2025 The Freshen Authors.

//go:build amd64 && !purego

#include "textflag.h"

// func dotAVX2(a, b *float32, n int) float32
//
// Returns sum(a[i]*b[i]) over the first n&^7 elements; the caller handles
// the remaining n&7 elements.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ CX, DX
	SHRQ $5, CX
	JZ dot_tail8

dot_loop32:
	VMOVUPS 0(SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS 0(DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ CX
	JNZ dot_loop32

dot_tail8:
	ANDQ $31, DX
	SHRQ $3, DX
	JZ dot_reduce

dot_loop8:
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ DX
	JNZ dot_loop8

dot_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(alpha float32, x, y *float32, n int)
//
// Computes y[i] += alpha*x[i] for the first n&^7 elements; the caller handles
// the remaining n&7 elements.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	MOVQ CX, DX
	SHRQ $5, CX
	JZ axpy_tail8

axpy_loop32:
	VMOVUPS 0(DI), Y1
	VMOVUPS 32(DI), Y2
	VMOVUPS 64(DI), Y3
	VMOVUPS 96(DI), Y4
	VFMADD231PS 0(SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS Y1, 0(DI)
	VMOVUPS Y2, 32(DI)
	VMOVUPS Y3, 64(DI)
	VMOVUPS Y4, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	DECQ CX
	JNZ axpy_loop32

axpy_tail8:
	ANDQ $31, DX
	SHRQ $3, DX
	JZ axpy_done

axpy_loop8:
	VMOVUPS (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ DX
	JNZ axpy_loop8

axpy_done:
	VZEROUPPER
	RET

// func packB16(dst, src *float32, ld, kb, panels int)
//
// Packs a kb x (16*panels) block of a row-major matrix (row stride ld
// elements, starting at src) into panels consecutive kb x 16 row-major
// panels at dst. Rows are read sequentially, one full row at a time.
TEXT ·packB16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ kb+24(FP), CX
	MOVQ CX, R9
	SHLQ $6, R9 // panel stride in bytes: kb*16*4
	MOVQ panels+32(FP), R10
	TESTQ CX, CX
	JZ pack_done
	TESTQ R10, R10
	JZ pack_done

pack_row:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R10, DX

pack_panel:
	VMOVUPS 0(AX), Y0
	VMOVUPS 32(AX), Y1
	VMOVUPS Y0, 0(BX)
	VMOVUPS Y1, 32(BX)
	ADDQ $64, AX
	ADDQ R9, BX
	DECQ DX
	JNZ pack_panel

	ADDQ R8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ pack_row

pack_done:
	VZEROUPPER
	RET
