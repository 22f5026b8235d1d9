//go:build amd64

#include "textflag.h"

// The vector loops of lanes.go. A row is 16 float32 lanes: two ymm of
// floats, or four ymm of doubles for the float64 sums. The per-lane
// parameters stay in memory and are read as operands, which leaves the
// registers to the accumulators. The sums start from, and end in, the
// caller's arrays, one accumulator per lane, rows in order: the Go loops'
// order, so both give the same bits.

// func laneShiftedSumsAVX2(s []float32, k, sum, sq *[16]float64)
TEXT ·laneShiftedSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ    s_base+0(FP), SI
	MOVQ    s_len+8(FP), CX
	MOVQ    k+24(FP), AX
	MOVQ    sum+32(FP), BX
	MOVQ    sq+40(FP), DX
	VMOVUPD 0(BX), Y0
	VMOVUPD 32(BX), Y1
	VMOVUPD 64(BX), Y2
	VMOVUPD 96(BX), Y3
	VMOVUPD 0(DX), Y4
	VMOVUPD 32(DX), Y5
	VMOVUPD 64(DX), Y6
	VMOVUPD 96(DX), Y7
	SHRQ    $4, CX
	JZ      lsdone

lsloop:
	VCVTPS2PD   0(SI), Y8
	VCVTPS2PD   16(SI), Y9
	VCVTPS2PD   32(SI), Y10
	VCVTPS2PD   48(SI), Y11
	VSUBPD      0(AX), Y8, Y8
	VSUBPD      32(AX), Y9, Y9
	VSUBPD      64(AX), Y10, Y10
	VSUBPD      96(AX), Y11, Y11
	VADDPD      Y8, Y0, Y0
	VADDPD      Y9, Y1, Y1
	VADDPD      Y10, Y2, Y2
	VADDPD      Y11, Y3, Y3
	VFMADD231PD Y8, Y8, Y4
	VFMADD231PD Y9, Y9, Y5
	VFMADD231PD Y10, Y10, Y6
	VFMADD231PD Y11, Y11, Y7
	ADDQ        $64, SI
	DECQ        CX
	JNZ         lsloop

lsdone:
	VMOVUPD Y0, 0(BX)
	VMOVUPD Y1, 32(BX)
	VMOVUPD Y2, 64(BX)
	VMOVUPD Y3, 96(BX)
	VMOVUPD Y4, 0(DX)
	VMOVUPD Y5, 32(DX)
	VMOVUPD Y6, 64(DX)
	VMOVUPD Y7, 96(DX)
	VZEROUPPER
	RET

// func laneGradSumsAVX2(g, x, mask, out []float32, mu, sum, dot *[16]float64)
// mask and out may be nil. g is ANDed with the compare 0 < mask (false for
// NaN), as in gradSumsMaskAVX2, so a masked g adds exactly 0; out receives
// it.
TEXT ·laneGradSumsAVX2(SB), NOSPLIT, $0-120
	MOVQ    g_base+0(FP), SI
	MOVQ    g_len+8(FP), CX
	MOVQ    x_base+24(FP), DI
	MOVQ    mask_base+48(FP), R8
	MOVQ    out_base+72(FP), R9
	MOVQ    mu+96(FP), AX
	MOVQ    sum+104(FP), BX
	MOVQ    dot+112(FP), DX
	VMOVUPD 0(BX), Y0
	VMOVUPD 32(BX), Y1
	VMOVUPD 64(BX), Y2
	VMOVUPD 96(BX), Y3
	VMOVUPD 0(DX), Y4
	VMOVUPD 32(DX), Y5
	VMOVUPD 64(DX), Y6
	VMOVUPD 96(DX), Y7
	VXORPS  X15, X15, X15
	SHRQ    $4, CX
	JZ      lgdone

lgloop:
	VMOVUPS 0(SI), X8
	VMOVUPS 16(SI), X9
	VMOVUPS 32(SI), X10
	VMOVUPS 48(SI), X11
	TESTQ   R8, R8
	JZ      lgnomask
	VCMPPS  $0x11, 0(R8), X15, X12
	VANDPS  X12, X8, X8
	VCMPPS  $0x11, 16(R8), X15, X12
	VANDPS  X12, X9, X9
	VCMPPS  $0x11, 32(R8), X15, X12
	VANDPS  X12, X10, X10
	VCMPPS  $0x11, 48(R8), X15, X12
	VANDPS  X12, X11, X11
	ADDQ    $64, R8

lgnomask:
	TESTQ   R9, R9
	JZ      lgsum
	VMOVUPS X8, 0(R9)
	VMOVUPS X9, 16(R9)
	VMOVUPS X10, 32(R9)
	VMOVUPS X11, 48(R9)
	ADDQ    $64, R9

lgsum:
	VCVTPS2PD   X8, Y8
	VCVTPS2PD   X9, Y9
	VCVTPS2PD   X10, Y10
	VCVTPS2PD   X11, Y11
	VADDPD      Y8, Y0, Y0
	VADDPD      Y9, Y1, Y1
	VADDPD      Y10, Y2, Y2
	VADDPD      Y11, Y3, Y3
	VCVTPS2PD   0(DI), Y12
	VCVTPS2PD   16(DI), Y13
	VSUBPD      0(AX), Y12, Y12
	VSUBPD      32(AX), Y13, Y13
	VFMADD231PD Y12, Y8, Y4
	VFMADD231PD Y13, Y9, Y5
	VCVTPS2PD   32(DI), Y12
	VCVTPS2PD   48(DI), Y13
	VSUBPD      64(AX), Y12, Y12
	VSUBPD      96(AX), Y13, Y13
	VFMADD231PD Y12, Y10, Y6
	VFMADD231PD Y13, Y11, Y7
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         lgloop

lgdone:
	VMOVUPD Y0, 0(BX)
	VMOVUPD Y1, 32(BX)
	VMOVUPD Y2, 64(BX)
	VMOVUPD Y3, 96(BX)
	VMOVUPD Y4, 0(DX)
	VMOVUPD Y5, 32(DX)
	VMOVUPD Y6, 64(DX)
	VMOVUPD Y7, 96(DX)
	VZEROUPPER
	RET

// func laneAffineAVX2(dst, src []float32, a, b *[16]float32, relu bool)
// The ReLU is Affine's: +0 added, then VMAXPS with the value as its second
// source, so -0 becomes +0 and NaN passes.
TEXT ·laneAffineAVX2(SB), NOSPLIT, $0-65
	MOVQ    dst_base+0(FP), DI
	MOVQ    dst_len+8(FP), CX
	MOVQ    src_base+24(FP), SI
	MOVQ    a+48(FP), AX
	MOVQ    b+56(FP), BX
	VMOVUPS 0(AX), Y10
	VMOVUPS 32(AX), Y11
	VMOVUPS 0(BX), Y12
	VMOVUPS 32(BX), Y13
	VXORPS  Y15, Y15, Y15
	MOVBLZX relu+64(FP), R9
	SHRQ    $4, CX
	JZ      ladone

laloop:
	VMOVUPS     0(SI), Y0
	VMOVUPS     32(SI), Y1
	VFMADD213PS Y12, Y10, Y0
	VFMADD213PS Y13, Y11, Y1
	TESTQ       R9, R9
	JZ          lastore
	VADDPS      Y15, Y0, Y0
	VMAXPS      Y0, Y15, Y0
	VADDPS      Y15, Y1, Y1
	VMAXPS      Y1, Y15, Y1

lastore:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     laloop

ladone:
	VZEROUPPER
	RET

// func laneAffineAddAVX2(dst, src, short []float32, a, b *[16]float32, relu bool)
// dst = src·a + (short + b): addAVX2's rounding, and Affine's ReLU.
TEXT ·laneAffineAddAVX2(SB), NOSPLIT, $0-89
	MOVQ    dst_base+0(FP), DI
	MOVQ    dst_len+8(FP), CX
	MOVQ    src_base+24(FP), SI
	MOVQ    short_base+48(FP), DX
	MOVQ    a+72(FP), AX
	MOVQ    b+80(FP), BX
	VMOVUPS 0(AX), Y10
	VMOVUPS 32(AX), Y11
	VMOVUPS 0(BX), Y12
	VMOVUPS 32(BX), Y13
	VXORPS  Y15, Y15, Y15
	MOVBLZX relu+88(FP), R9
	SHRQ    $4, CX
	JZ      lbdone

lbloop:
	VMOVUPS     0(DX), Y2
	VMOVUPS     32(DX), Y3
	VADDPS      Y12, Y2, Y2
	VADDPS      Y13, Y3, Y3
	VMOVUPS     0(SI), Y0
	VMOVUPS     32(SI), Y1
	VFMADD213PS Y2, Y10, Y0
	VFMADD213PS Y3, Y11, Y1
	TESTQ       R9, R9
	JZ          lbstore
	VADDPS      Y15, Y0, Y0
	VMAXPS      Y0, Y15, Y0
	VADDPS      Y15, Y1, Y1
	VMAXPS      Y1, Y15, Y1

lbstore:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     lbloop

lbdone:
	VZEROUPPER
	RET

// func laneGradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a *[16]float32, overwrite bool)
// gradRunAVX2's arithmetic per lane; mask may be nil. g (and dx, when
// adding) is loaded before dx is stored, so dx may be g.
TEXT ·laneGradRunAVX2(SB), NOSPLIT, $0-129
	MOVQ    dx_base+0(FP), DI
	MOVQ    dx_len+8(FP), CX
	MOVQ    g_base+24(FP), SI
	MOVQ    x_base+48(FP), DX
	MOVQ    mask_base+72(FP), R8
	MOVQ    gm+96(FP), AX
	MOVQ    mu+104(FP), BX
	MOVQ    k+112(FP), R10
	MOVQ    a+120(FP), R11
	VMOVUPS 0(AX), Y8
	VMOVUPS 32(AX), Y9
	VMOVUPS 0(BX), Y10
	VMOVUPS 32(BX), Y11
	VMOVUPS 0(R10), Y12
	VMOVUPS 32(R10), Y13
	VXORPS  Y15, Y15, Y15
	MOVBLZX overwrite+128(FP), R9
	SHRQ    $4, CX
	JZ      lrdone

lrloop:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	TESTQ   R8, R8
	JZ      lrnomask
	VCMPPS  $0x11, 0(R8), Y15, Y2
	VANDPS  Y2, Y0, Y0
	VCMPPS  $0x11, 32(R8), Y15, Y3
	VANDPS  Y3, Y1, Y1
	ADDQ    $64, R8

lrnomask:
	VMOVUPS      0(DX), Y2
	VMOVUPS      32(DX), Y3
	VSUBPS       Y10, Y2, Y2
	VSUBPS       Y11, Y3, Y3
	VSUBPS       Y8, Y0, Y0
	VSUBPS       Y9, Y1, Y1
	VFNMADD231PS Y12, Y2, Y0
	VFNMADD231PS Y13, Y3, Y1
	VMOVUPS      0(R11), Y2
	VMOVUPS      32(R11), Y3
	TESTQ        R9, R9
	JZ           lradd
	VMULPS       Y2, Y0, Y0
	VMULPS       Y3, Y1, Y1
	JMP          lrstore

lradd:
	VFMADD213PS 0(DI), Y2, Y0
	VFMADD213PS 32(DI), Y3, Y1

lrstore:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     lrloop

lrdone:
	VZEROUPPER
	RET
