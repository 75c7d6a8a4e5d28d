#include "textflag.h"

// func quantizeAVX2(dst *int8, x, mean, k *float32, n int, z int32) bool
TEXT ·quantizeAVX2(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mean+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ n+32(FP), R8

	// Constants, each broadcast to eight lanes.
	MOVL         z+40(FP), AX
	MOVQ         AX, X8
	VPBROADCASTD X8, Y8            // z (int32)
	MOVL         $0xc4000000, AX
	MOVQ         AX, X9
	VBROADCASTSS X9, Y9            // -512
	MOVL         $0x44000000, AX
	MOVQ         AX, X10
	VBROADCASTSS X10, Y10          // 512
	MOVL         $0x7fffffff, AX
	MOVQ         AX, X11
	VPBROADCASTD X11, Y11          // abs mask
	MOVL         $0x3f000000, AX
	MOVQ         AX, X12
	VBROADCASTSS X12, Y12          // 0.5
	MOVL         $-128, AX
	MOVQ         AX, X13
	VPBROADCASTD X13, Y13          // -128
	MOVL         $127, AX
	MOVQ         AX, X14
	VPBROADCASTD X14, Y14          // 127
	VXORPS       Y15, Y15, Y15     // NaN lanes seen
	XORQ         BX, BX

loop:
	VMOVUPS   (SI)(BX*4), Y0
	VSUBPS    (DX)(BX*4), Y0, Y0   // x - mean
	VMULPS    (CX)(BX*4), Y0, Y0   // v = (x - mean) * k
	VCMPPS    $3, Y0, Y0, Y1       // unordered: NaN
	VORPS     Y1, Y15, Y15
	VMAXPS    Y9, Y0, Y0
	VMINPS    Y10, Y0, Y0          // clamp to [-512, 512]
	VANDPS    Y11, Y0, Y2          // a = |v|
	VADDPS    Y12, Y2, Y3
	VCVTTPS2DQ Y3, Y3              // t = trunc(a + 0.5), int32
	VCVTDQ2PS Y3, Y4
	VSUBPS    Y12, Y4, Y4
	VCMPPS    $0x1e, Y2, Y4, Y4    // t - 0.5 > a: -1
	VPADDD    Y4, Y3, Y3           // t--
	VPSIGND   Y0, Y3, Y3           // negate where v's sign bit is set
	VPADDD    Y8, Y3, Y3           // + z
	VPMAXSD   Y13, Y3, Y3
	VPMINSD   Y14, Y3, Y3          // clamp to [-128, 127]
	VPACKSSDW Y3, Y3, Y3           // [0..3 0..3 | 4..7 4..7] int16
	VPERMQ    $0x08, Y3, Y3        // [0..3 4..7] in the low 128 bits
	VPACKSSWB X3, X3, X3
	MOVQ      X3, AX
	MOVQ      AX, (DI)(BX*1)
	ADDQ      $8, BX
	CMPQ      BX, R8
	JLT       loop

	VMOVMSKPS Y15, AX
	TESTL     AX, AX
	SETEQ     ret+48(FP)
	VZEROUPPER
	RET
