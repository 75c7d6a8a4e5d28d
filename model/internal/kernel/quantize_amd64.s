#include "textflag.h"

// func quantizeAVX2(dst *int8, x, mean *float32, k *float64, n int, z int64) bool
TEXT ·quantizeAVX2(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ mean+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ n+32(FP), R8
	MOVQ z+40(FP), AX

	// Constants, each broadcast to four float64 lanes.
	CVTSQ2SD     AX, X8
	VBROADCASTSD X8, Y8            // z
	MOVQ         $0xc080000000000000, AX
	MOVQ         AX, X9
	VBROADCASTSD X9, Y9            // -512
	MOVQ         $0x4080000000000000, AX
	MOVQ         AX, X10
	VBROADCASTSD X10, Y10          // 512
	MOVQ         $0x7fffffffffffffff, AX
	MOVQ         AX, X11
	VBROADCASTSD X11, Y11          // abs mask
	MOVQ         $0x3fe0000000000000, AX
	MOVQ         AX, X12
	VBROADCASTSD X12, Y12          // 0.5
	MOVQ         $0x3ff0000000000000, AX
	MOVQ         AX, X13
	VBROADCASTSD X13, Y13          // 1.0
	MOVQ         $0xc060000000000000, AX
	MOVQ         AX, X14
	VBROADCASTSD X14, Y14          // -128
	VXORPD       Y15, Y15, Y15     // NaN lanes seen
	MOVQ         $0x405fc00000000000, AX
	MOVQ         AX, X7
	VBROADCASTSD X7, Y7            // 127
	XORQ         BX, BX

loop:
	VCVTPS2PD (SI)(BX*4), Y0
	VCVTPS2PD (DX)(BX*4), Y1
	VSUBPD    Y1, Y0, Y0           // x - mean
	VMULPD    (CX)(BX*8), Y0, Y0   // v = (x - mean) * k
	VCMPPD    $3, Y0, Y0, Y1       // unordered: NaN
	VORPD     Y1, Y15, Y15
	VMAXPD    Y9, Y0, Y0
	VMINPD    Y10, Y0, Y0          // clamp to [-512, 512]
	VANDPD    Y11, Y0, Y2          // a = |v|
	VADDPD    Y12, Y2, Y3
	VCVTTPD2DQY Y3, X3
	VCVTDQ2PD X3, Y3               // t = trunc(a + 0.5)
	VSUBPD    Y12, Y3, Y4
	VCMPPD    $0x1e, Y2, Y4, Y4    // t - 0.5 > a
	VANDPD    Y13, Y4, Y4
	VSUBPD    Y4, Y3, Y3           // t--
	VANDNPD   Y0, Y11, Y5          // sign bit of v
	VORPD     Y5, Y3, Y3           // ±t
	VADDPD    Y8, Y3, Y3           // + z
	VMAXPD    Y14, Y3, Y3
	VMINPD    Y7, Y3, Y3           // clamp to [-128, 127]
	VCVTTPD2DQY Y3, X3
	VPACKSSDW X3, X3, X3
	VPACKSSWB X3, X3, X3
	MOVL      X3, AX
	MOVL      AX, (DI)(BX*1)
	ADDQ      $4, BX
	CMPQ      BX, R8
	JLT       loop

	VMOVMSKPD Y15, AX
	TESTL     AX, AX
	SETEQ     ret+48(FP)
	VZEROUPPER
	RET
