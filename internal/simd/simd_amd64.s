//go:build amd64

#include "textflag.h"

// The vector loops of simd.go, for AVX2 with FMA. Go's operand order is
// reversed from Intel's: the destination comes last.

// func shiftedSumsAVX2(s []float32, k float64) (sum, sq float64)
// len(s) is a multiple of 16. Four float64 accumulators each for the sum
// and the sum of squares, 4 lanes apiece, added up in a fixed order.
TEXT ·shiftedSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ         s_base+0(FP), SI
	MOVQ         s_len+8(FP), CX
	VBROADCASTSD k+24(FP), Y15
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $4, CX
	JZ           ssdone

ssloop:
	VCVTPS2PD   0(SI), Y8
	VCVTPS2PD   16(SI), Y9
	VCVTPS2PD   32(SI), Y10
	VCVTPS2PD   48(SI), Y11
	VSUBPD      Y15, Y8, Y8
	VSUBPD      Y15, Y9, Y9
	VSUBPD      Y15, Y10, Y10
	VSUBPD      Y15, Y11, Y11
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
	JNZ         ssloop

ssdone:
	VADDPD       Y1, Y0, Y0
	VADDPD       Y3, Y2, Y2
	VADDPD       Y2, Y0, Y0
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VUNPCKHPD    X0, X0, X1
	VADDSD       X1, X0, X0
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VUNPCKHPD    X4, X4, X5
	VADDSD       X5, X4, X4
	VMOVSD       X0, sum+32(FP)
	VMOVSD       X4, sq+40(FP)
	VZEROUPPER
	RET

// func affineAVX2(dst, src []float32, a, b float32, relu bool)
// The ReLU adds +0 first, which turns -0 into +0 as Go's max does, and then
// takes VMAXPS with the value as its second source, which VMAXPS returns
// when either is NaN: NaN passes.
TEXT ·affineAVX2(SB), NOSPLIT, $0-57
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         src_base+24(FP), SI
	VBROADCASTSS a+48(FP), Y14
	VBROADCASTSS b+52(FP), Y13
	VXORPS       Y15, Y15, Y15
	MOVQ         CX, DX
	SHRQ         $3, DX
	ANDQ         $7, CX
	CMPB         relu+56(FP), $0
	JNE          relu
	TESTQ        DX, DX
	JZ           tail

loop:
	VMOVUPS     (SI), Y0
	VFMADD213PS Y13, Y14, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        DX
	JNZ         loop

tail:
	TESTQ CX, CX
	JZ    done

tailloop:
	VMOVSS      (SI), X0
	VFMADD213SS X13, X14, X0
	VMOVSS      X0, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         tailloop
	JMP         done

relu:
	TESTQ DX, DX
	JZ    relutail

reluloop:
	VMOVUPS     (SI), Y0
	VFMADD213PS Y13, Y14, Y0
	VADDPS      Y15, Y0, Y0
	VMAXPS      Y0, Y15, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        DX
	JNZ         reluloop

relutail:
	TESTQ CX, CX
	JZ    done

relutailloop:
	VMOVSS      (SI), X0
	VFMADD213SS X13, X14, X0
	VADDSS      X15, X0, X0
	VMAXSS      X0, X15, X0
	VMOVSS      X0, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         relutailloop

done:
	VZEROUPPER
	RET

// func affineAddAVX2(dst, src []float32, a, b float32)
// dst += src·a + b, the product and b fused, then added to dst.
TEXT ·affineAddAVX2(SB), NOSPLIT, $0-56
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         src_base+24(FP), SI
	VBROADCASTSS a+48(FP), Y14
	VBROADCASTSS b+52(FP), Y13
	MOVQ         CX, DX
	SHRQ         $3, DX
	ANDQ         $7, CX
	TESTQ        DX, DX
	JZ           aatail

aaloop:
	VMOVUPS     (SI), Y0
	VFMADD213PS Y13, Y14, Y0
	VADDPS      (DI), Y0, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        DX
	JNZ         aaloop

aatail:
	TESTQ CX, CX
	JZ    aadone

aatailloop:
	VMOVSS      (SI), X0
	VFMADD213SS X13, X14, X0
	VADDSS      (DI), X0, X0
	VMOVSS      X0, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         aatailloop

aadone:
	VZEROUPPER
	RET

// func gradSumsAVX2(g, x []float32, mu float64) (sum, dot float64)
// len(g) is a multiple of 16.
TEXT ·gradSumsAVX2(SB), NOSPLIT, $0-72
	MOVQ         g_base+0(FP), SI
	MOVQ         g_len+8(FP), CX
	MOVQ         x_base+24(FP), DX
	VBROADCASTSD mu+48(FP), Y15
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $4, CX
	JZ           gsdone

gsloop:
	VCVTPS2PD   0(SI), Y8
	VCVTPS2PD   0(DX), Y9
	VCVTPS2PD   16(SI), Y10
	VCVTPS2PD   16(DX), Y11
	VCVTPS2PD   32(SI), Y12
	VCVTPS2PD   32(DX), Y13
	VSUBPD      Y15, Y9, Y9
	VSUBPD      Y15, Y11, Y11
	VSUBPD      Y15, Y13, Y13
	VADDPD      Y8, Y0, Y0
	VADDPD      Y10, Y1, Y1
	VADDPD      Y12, Y2, Y2
	VFMADD231PD Y9, Y8, Y4
	VFMADD231PD Y11, Y10, Y5
	VFMADD231PD Y13, Y12, Y6
	VCVTPS2PD   48(SI), Y8
	VCVTPS2PD   48(DX), Y9
	VSUBPD      Y15, Y9, Y9
	VADDPD      Y8, Y3, Y3
	VFMADD231PD Y9, Y8, Y7
	ADDQ        $64, SI
	ADDQ        $64, DX
	DECQ        CX
	JNZ         gsloop

gsdone:
	VADDPD       Y1, Y0, Y0
	VADDPD       Y3, Y2, Y2
	VADDPD       Y2, Y0, Y0
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VUNPCKHPD    X0, X0, X1
	VADDSD       X1, X0, X0
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VUNPCKHPD    X4, X4, X5
	VADDSD       X5, X4, X4
	VMOVSD       X0, sum+56(FP)
	VMOVSD       X4, dot+64(FP)
	VZEROUPPER
	RET

// func gradSumsMaskAVX2(g, x, mask []float32, mu float64) (sum, dot float64)
// len(g) is a multiple of 16. g is ANDed with the compare 0 < mask, which
// is all ones where mask > 0 and zero elsewhere (NaN included): g where the
// mask passes, +0 where it does not, whatever g is.
TEXT ·gradSumsMaskAVX2(SB), NOSPLIT, $0-96
	MOVQ         g_base+0(FP), SI
	MOVQ         g_len+8(FP), CX
	MOVQ         x_base+24(FP), DX
	MOVQ         mask_base+48(FP), R8
	VBROADCASTSD mu+72(FP), Y15
	VXORPS       Y14, Y14, Y14
	VXORPD       Y0, Y0, Y0
	VXORPD       Y1, Y1, Y1
	VXORPD       Y2, Y2, Y2
	VXORPD       Y3, Y3, Y3
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $4, CX
	JZ           gmdone

gmloop:
	VCMPPS      $0x11, 0(R8), X14, X8
	VCMPPS      $0x11, 16(R8), X14, X10
	VCMPPS      $0x11, 32(R8), X14, X12
	VANDPS      0(SI), X8, X8
	VANDPS      16(SI), X10, X10
	VANDPS      32(SI), X12, X12
	VCVTPS2PD   X8, Y8
	VCVTPS2PD   X10, Y10
	VCVTPS2PD   X12, Y12
	VCVTPS2PD   0(DX), Y9
	VCVTPS2PD   16(DX), Y11
	VCVTPS2PD   32(DX), Y13
	VSUBPD      Y15, Y9, Y9
	VSUBPD      Y15, Y11, Y11
	VSUBPD      Y15, Y13, Y13
	VADDPD      Y8, Y0, Y0
	VADDPD      Y10, Y1, Y1
	VADDPD      Y12, Y2, Y2
	VFMADD231PD Y9, Y8, Y4
	VFMADD231PD Y11, Y10, Y5
	VFMADD231PD Y13, Y12, Y6
	VCMPPS      $0x11, 48(R8), X14, X8
	VANDPS      48(SI), X8, X8
	VCVTPS2PD   X8, Y8
	VCVTPS2PD   48(DX), Y9
	VSUBPD      Y15, Y9, Y9
	VADDPD      Y8, Y3, Y3
	VFMADD231PD Y9, Y8, Y7
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, R8
	DECQ        CX
	JNZ         gmloop

gmdone:
	VADDPD       Y1, Y0, Y0
	VADDPD       Y3, Y2, Y2
	VADDPD       Y2, Y0, Y0
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VUNPCKHPD    X0, X0, X1
	VADDSD       X1, X0, X0
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VUNPCKHPD    X4, X4, X5
	VADDSD       X5, X4, X4
	VMOVSD       X0, sum+80(FP)
	VMOVSD       X4, dot+88(FP)
	VZEROUPPER
	RET

// func gradRunAVX2(dx, g, x, mask []float32, gm, mu, k, a float32, overwrite bool)
// Any length; mask may be nil. Each vector of g (and of dx, when adding)
// is loaded before dx's is stored, so dx may be g.
TEXT ·gradRunAVX2(SB), NOSPLIT, $0-113
	MOVQ         dx_base+0(FP), DI
	MOVQ         dx_len+8(FP), CX
	MOVQ         g_base+24(FP), SI
	MOVQ         x_base+48(FP), DX
	MOVQ         mask_base+72(FP), R8
	VBROADCASTSS gm+96(FP), Y12
	VBROADCASTSS mu+100(FP), Y13
	VBROADCASTSS k+104(FP), Y14
	VBROADCASTSS a+108(FP), Y15
	VXORPS       Y11, Y11, Y11
	MOVBLZX      overwrite+112(FP), R9
	MOVQ         CX, BX
	SHRQ         $3, BX
	ANDQ         $7, CX
	TESTQ        BX, BX
	JZ           grtail

grloop:
	VMOVUPS (SI), Y0
	TESTQ   R8, R8
	JZ      grnomask
	VCMPPS  $0x11, (R8), Y11, Y1
	VANDPS  Y1, Y0, Y0
	ADDQ    $32, R8

grnomask:
	VMOVUPS      (DX), Y2
	VSUBPS       Y13, Y2, Y2
	VSUBPS       Y12, Y0, Y0
	VFNMADD231PS Y14, Y2, Y0
	TESTQ        R9, R9
	JZ           gradd
	VMULPS       Y15, Y0, Y0
	JMP          grstore

gradd:
	VFMADD213PS (DI), Y15, Y0

grstore:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    BX
	JNZ     grloop

grtail:
	TESTQ CX, CX
	JZ    grdone

grtailloop:
	VMOVSS (SI), X0
	TESTQ  R8, R8
	JZ     grtnomask
	VCMPSS $0x11, (R8), X11, X1
	VANDPS X1, X0, X0
	ADDQ   $4, R8

grtnomask:
	VMOVSS       (DX), X2
	VSUBSS       X13, X2, X2
	VSUBSS       X12, X0, X0
	VFNMADD231SS X14, X2, X0
	TESTQ        R9, R9
	JZ           grtadd
	VMULSS       X15, X0, X0
	JMP          grtstore

grtadd:
	VFMADD213SS (DI), X15, X0

grtstore:
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DX
	ADDQ   $4, DI
	DECQ   CX
	JNZ    grtailloop

grdone:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b []float32, k, c float32, relu bool)
// Any length: dst = a·k + (b + c), the product and the sum in one rounding
// (FMA; with k = 1 and c = -0 exactly a+b).
// The ReLU is Affine's: +0 added, then VMAXPS with the sum as its second
// source, so -0 becomes +0 and NaN passes. Each vector of a and b is
// loaded before dst's is stored, so dst may be a or b.
TEXT ·addAVX2(SB), NOSPLIT, $0-81
	MOVQ   dst_base+0(FP), DI
	MOVQ   dst_len+8(FP), CX
	MOVQ   a_base+24(FP), SI
	MOVQ   b_base+48(FP), DX
	VBROADCASTSS k+72(FP), Y14
	VBROADCASTSS c+76(FP), Y13
	VXORPS Y15, Y15, Y15
	MOVQ   CX, BX
	SHRQ   $3, BX
	ANDQ   $7, CX
	CMPB   relu+80(FP), $0
	JNE    adrelu
	TESTQ  BX, BX
	JZ     adtail

adloop:
	VMOVUPS (DX), Y1
	VADDPS  Y13, Y1, Y1
	VMOVUPS (SI), Y0
	VFMADD213PS Y1, Y14, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    BX
	JNZ     adloop

adtail:
	TESTQ CX, CX
	JZ    addone

adtailloop:
	VMOVSS (DX), X1
	VADDSS X13, X1, X1
	VMOVSS (SI), X0
	VFMADD213SS X1, X14, X0
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DX
	ADDQ   $4, DI
	DECQ   CX
	JNZ    adtailloop
	JMP    addone

adrelu:
	TESTQ BX, BX
	JZ    adrelutail

adreluloop:
	VMOVUPS (DX), Y1
	VADDPS  Y13, Y1, Y1
	VMOVUPS (SI), Y0
	VFMADD213PS Y1, Y14, Y0
	VADDPS  Y15, Y0, Y0
	VMAXPS  Y0, Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    BX
	JNZ     adreluloop

adrelutail:
	TESTQ CX, CX
	JZ    addone

adrelutailloop:
	VMOVSS (DX), X1
	VADDSS X13, X1, X1
	VMOVSS (SI), X0
	VFMADD213SS X1, X14, X0
	VADDSS X15, X0, X0
	VMAXSS X0, X15, X0
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DX
	ADDQ   $4, DI
	DECQ   CX
	JNZ    adrelutailloop

addone:
	VZEROUPPER
	RET

// func maskAVX2(dst, g, y []float32, add bool)
// Any length. g is ANDed with the compare 0 < y, as in gradSumsMaskAVX2:
// g where y > 0, +0 elsewhere (y NaN included) whatever g is; then added
// to dst when add is set. Each vector of g is loaded before dst's is
// stored, so dst may be g.
TEXT ·maskAVX2(SB), NOSPLIT, $0-73
	MOVQ   dst_base+0(FP), DI
	MOVQ   dst_len+8(FP), CX
	MOVQ   g_base+24(FP), SI
	MOVQ   y_base+48(FP), DX
	VXORPS Y15, Y15, Y15
	MOVBLZX add+72(FP), R9
	MOVQ   CX, BX
	SHRQ   $3, BX
	ANDQ   $7, CX
	TESTQ  BX, BX
	JZ     mktail

mkloop:
	VCMPPS $0x11, (DX), Y15, Y1
	VANDPS (SI), Y1, Y0
	TESTQ  R9, R9
	JZ     mkstore
	VADDPS (DI), Y0, Y0

mkstore:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    BX
	JNZ     mkloop

mktail:
	TESTQ CX, CX
	JZ    mkdone

mktailloop:
	VMOVSS (SI), X0
	VCMPSS $0x11, (DX), X15, X1
	VANDPS X1, X0, X0
	TESTQ  R9, R9
	JZ     mktstore
	VADDSS (DI), X0, X0

mktstore:
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DX
	ADDQ   $4, DI
	DECQ   CX
	JNZ    mktailloop

mkdone:
	VZEROUPPER
	RET

// func mulAVX2(dst, a, b []float32, overwrite bool)
// Any length. Adding fuses the multiply (dst + a·b rounded once). Each
// vector of a and b is loaded before dst's is stored, so dst may be a or b.
TEXT ·mulAVX2(SB), NOSPLIT, $0-73
	MOVQ    dst_base+0(FP), DI
	MOVQ    dst_len+8(FP), CX
	MOVQ    a_base+24(FP), SI
	MOVQ    b_base+48(FP), DX
	MOVBLZX overwrite+72(FP), R9
	MOVQ    CX, BX
	SHRQ    $3, BX
	ANDQ    $7, CX
	TESTQ   BX, BX
	JZ      mutail

muloop:
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	TESTQ   R9, R9
	JZ      muadd
	VMULPS  Y1, Y0, Y0
	JMP     mustore

muadd:
	VFMADD213PS (DI), Y1, Y0

mustore:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    BX
	JNZ     muloop

mutail:
	TESTQ CX, CX
	JZ    mudone

mutailloop:
	VMOVSS (SI), X0
	VMOVSS (DX), X1
	TESTQ  R9, R9
	JZ     mutadd
	VMULSS X1, X0, X0
	JMP    mutstore

mutadd:
	VFMADD213SS (DI), X1, X0

mutstore:
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DX
	ADDQ   $4, DI
	DECQ   CX
	JNZ    mutailloop

mudone:
	VZEROUPPER
	RET

// func scaleGradAVX2(dx, gy, x []float32, a float32, overwrite bool) (dot float64)
// len(gy) is a multiple of 16; dx is nil or as long. Four float64
// accumulators of 4 lanes for Σ gy·x (the float32 products are exact in
// float64, so fusing changes nothing), added up in a fixed order; then,
// unless dx is nil, dx = gy·a or dx += gy·a (fused) for the same 16
// elements, stored after all of them were read, so dx may be gy.
TEXT ·scaleGradAVX2(SB), NOSPLIT, $0-88
	MOVQ         dx_base+0(FP), DI
	MOVQ         gy_base+24(FP), SI
	MOVQ         gy_len+32(FP), CX
	MOVQ         x_base+48(FP), DX
	VBROADCASTSS a+72(FP), Y15
	MOVBLZX      overwrite+76(FP), R9
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5
	VXORPD       Y6, Y6, Y6
	VXORPD       Y7, Y7, Y7
	SHRQ         $4, CX
	JZ           sgdone

sgloop:
	VCVTPS2PD   0(SI), Y8
	VCVTPS2PD   0(DX), Y9
	VCVTPS2PD   16(SI), Y10
	VCVTPS2PD   16(DX), Y11
	VCVTPS2PD   32(SI), Y12
	VCVTPS2PD   32(DX), Y13
	VFMADD231PD Y9, Y8, Y4
	VFMADD231PD Y11, Y10, Y5
	VFMADD231PD Y13, Y12, Y6
	VCVTPS2PD   48(SI), Y8
	VCVTPS2PD   48(DX), Y9
	VFMADD231PD Y9, Y8, Y7
	TESTQ       DI, DI
	JZ          sgnext
	VMOVUPS     0(SI), Y0
	VMOVUPS     32(SI), Y1
	TESTQ       R9, R9
	JZ          sgadd
	VMULPS      Y15, Y0, Y0
	VMULPS      Y15, Y1, Y1
	JMP         sgstore

sgadd:
	VFMADD213PS 0(DI), Y15, Y0
	VFMADD213PS 32(DI), Y15, Y1

sgstore:
	VMOVUPS Y0, 0(DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, DI

sgnext:
	ADDQ $64, SI
	ADDQ $64, DX
	DECQ CX
	JNZ  sgloop

sgdone:
	VADDPD       Y5, Y4, Y4
	VADDPD       Y7, Y6, Y6
	VADDPD       Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VADDPD       X5, X4, X4
	VUNPCKHPD    X4, X4, X5
	VADDSD       X5, X4, X4
	VMOVSD       X4, dot+80(FP)
	VZEROUPPER
	RET
