#include "textflag.h"

// func quantizeNEON(dst *int8, x, mean, k *float32, n int, z int32) bool
// Eight features per step with exactly the float32 operations of
// quantizeGeneric (FSUB then FMUL, never fused). n must be a positive
// multiple of 8. Returns false if any lane was NaN.
//
// Registers: V20 = -512, V21 = 512, V22 = 0.5, V23 = z, V24 = -128,
// V25 = 127 (int32), V30 = AND of the "not NaN" masks.
TEXT ·quantizeNEON(SB), NOSPLIT, $0-49
	MOVD dst+0(FP), R0
	MOVD x+8(FP), R1
	MOVD mean+16(FP), R2
	MOVD k+24(FP), R3
	MOVD n+32(FP), R4
	MOVW z+40(FP), R5
	VDUP R5, V23.S4
	MOVW $0xc4000000, R6
	VDUP R6, V20.S4
	MOVW $0x44000000, R6
	VDUP R6, V21.S4
	MOVW $0x3f000000, R6
	VDUP R6, V22.S4
	MOVW $-128, R6
	VDUP R6, V24.S4
	MOVW $127, R6
	VDUP R6, V25.S4
	MOVW $-1, R6
	VDUP R6, V30.S4

loop:
	VLD1.P 32(R1), [V0.S4, V1.S4]   // x
	VLD1.P 32(R2), [V2.S4, V3.S4]   // mean
	VLD1.P 32(R3), [V4.S4, V5.S4]   // k
	WORD $0x4ea2d400 // FSUB V0.4S, V0.4S, V2.4S
	WORD $0x4ea3d421 // FSUB V1.4S, V1.4S, V3.4S
	WORD $0x6e24dc00 // FMUL V0.4S, V0.4S, V4.4S
	WORD $0x6e25dc21 // FMUL V1.4S, V1.4S, V5.4S
	WORD $0x4e20e406 // FCMEQ V6.4S, V0.4S, V0.4S  // false for NaN
	WORD $0x4e261fde // AND V30.16B, V30.16B, V6.16B
	WORD $0x4e21e427 // FCMEQ V7.4S, V1.4S, V1.4S  // false for NaN
	WORD $0x4e271fde // AND V30.16B, V30.16B, V7.16B
	WORD $0x4e34f400 // FMAX V0.4S, V0.4S, V20.4S
	WORD $0x4eb5f400 // FMIN V0.4S, V0.4S, V21.4S
	WORD $0x4e34f421 // FMAX V1.4S, V1.4S, V20.4S
	WORD $0x4eb5f421 // FMIN V1.4S, V1.4S, V21.4S
	WORD $0x4ea0f802 // FABS V2.4S, V0.4S  // a
	WORD $0x4e36d444 // FADD V4.4S, V2.4S, V22.4S
	WORD $0x4ea1b884 // FCVTZS V4.4S, V4.4S  // t
	WORD $0x4e21d886 // SCVTF V6.4S, V4.4S
	WORD $0x4eb6d4c6 // FSUB V6.4S, V6.4S, V22.4S
	WORD $0x6ea2e4c6 // FCMGT V6.4S, V6.4S, V2.4S  // t - 0.5 > a
	WORD $0x4ea68484 // ADD V4.4S, V4.4S, V6.4S  // t--
	WORD $0x4ea0a808 // CMLT V8.4S, V0.4S, #0  // sign of v
	WORD $0x6e281c84 // EOR V4.16B, V4.16B, V8.16B
	WORD $0x6ea88484 // SUB V4.4S, V4.4S, V8.4S
	WORD $0x4eb78484 // ADD V4.4S, V4.4S, V23.4S  // + z
	WORD $0x4eb86484 // SMAX V4.4S, V4.4S, V24.4S
	WORD $0x4eb96c84 // SMIN V4.4S, V4.4S, V25.4S
	WORD $0x4ea0f823 // FABS V3.4S, V1.4S  // a
	WORD $0x4e36d465 // FADD V5.4S, V3.4S, V22.4S
	WORD $0x4ea1b8a5 // FCVTZS V5.4S, V5.4S  // t
	WORD $0x4e21d8a7 // SCVTF V7.4S, V5.4S
	WORD $0x4eb6d4e7 // FSUB V7.4S, V7.4S, V22.4S
	WORD $0x6ea3e4e7 // FCMGT V7.4S, V7.4S, V3.4S  // t - 0.5 > a
	WORD $0x4ea784a5 // ADD V5.4S, V5.4S, V7.4S  // t--
	WORD $0x4ea0a829 // CMLT V9.4S, V1.4S, #0  // sign of v
	WORD $0x6e291ca5 // EOR V5.16B, V5.16B, V9.16B
	WORD $0x6ea984a5 // SUB V5.4S, V5.4S, V9.4S
	WORD $0x4eb784a5 // ADD V5.4S, V5.4S, V23.4S  // + z
	WORD $0x4eb864a5 // SMAX V5.4S, V5.4S, V24.4S
	WORD $0x4eb96ca5 // SMIN V5.4S, V5.4S, V25.4S
	WORD $0xe614889 // SQXTN V9.4H, V4.4S
	WORD $0x4e6148a9 // SQXTN2 V9.8H, V5.4S
	WORD $0xe214929 // SQXTN V9.8B, V9.8H
	VST1.P [V9.B8], 8(R0)
	SUBS $8, R4, R4
	BNE  loop

	VMOV V30.D[0], R6
	VMOV V30.D[1], R7
	AND  R7, R6, R6
	CMN  $1, R6
	CSET EQ, R8
	MOVB R8, ret+48(FP)
	RET
