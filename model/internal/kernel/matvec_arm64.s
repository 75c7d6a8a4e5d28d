#include "textflag.h"

// Instructions the Go assembler has no mnemonic for are written as WORDs;
// each is annotated with its assembly.

// func matVecNEON(dst *int32, w, x *int8, rows, cols int)
// Requires rows > 0, cols > 0 and cols % 16 == 0. Weights in [-127, 127]:
// SMULL then SMLAL2 adds two products of at most 127·128 = 16256 into an
// int16 lane (≤ 32512, no overflow), and SADALP widens the pairs into int32.
TEXT ·matVecNEON(SB), NOSPLIT, $0-40
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD x+16(FP), R2
	MOVD rows+24(FP), R3
	MOVD cols+32(FP), R4

neon_rows4:
	CMP  $4, R3
	BLT  neon_rows1
	MOVD R1, R5
	ADD  R4, R5, R6
	ADD  R4, R6, R7
	ADD  R4, R7, R8
	MOVD R2, R9
	MOVD R4, R10
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16

neon_loop4:
	VLD1.P 16(R9), [V0.B16]
	VLD1.P 16(R5), [V1.B16]
	VLD1.P 16(R6), [V2.B16]
	VLD1.P 16(R7), [V3.B16]
	VLD1.P 16(R8), [V4.B16]
	WORD $0xe21c005 // SMULL  V5.8H, V0.8B, V1.8B
	WORD $0x4e218005 // SMLAL2 V5.8H, V0.16B, V1.16B
	WORD $0x4e6068b0 // SADALP V16.4S, V5.8H
	WORD $0xe22c006 // SMULL  V6.8H, V0.8B, V2.8B
	WORD $0x4e228006 // SMLAL2 V6.8H, V0.16B, V2.16B
	WORD $0x4e6068d1 // SADALP V17.4S, V6.8H
	WORD $0xe23c007 // SMULL  V7.8H, V0.8B, V3.8B
	WORD $0x4e238007 // SMLAL2 V7.8H, V0.16B, V3.16B
	WORD $0x4e6068f2 // SADALP V18.4S, V7.8H
	WORD $0xe24c008 // SMULL  V8.8H, V0.8B, V4.8B
	WORD $0x4e248008 // SMLAL2 V8.8H, V0.16B, V4.16B
	WORD $0x4e606913 // SADALP V19.4S, V8.8H
	SUBS $16, R10, R10
	BNE  neon_loop4

	VADDP V17.S4, V16.S4, V20.S4
	VADDP V19.S4, V18.S4, V21.S4
	VADDP V21.S4, V20.S4, V22.S4
	VST1.P [V22.S4], 16(R0)
	ADD  R4<<2, R1, R1
	SUB  $4, R3, R3
	B    neon_rows4

neon_rows1:
	CBZ  R3, neon_done
	MOVD R2, R9
	MOVD R4, R10
	VEOR V16.B16, V16.B16, V16.B16

neon_loop1:
	VLD1.P 16(R9), [V0.B16]
	VLD1.P 16(R1), [V1.B16]
	WORD $0xe21c005 // SMULL  V5.8H, V0.8B, V1.8B
	WORD $0x4e218005 // SMLAL2 V5.8H, V0.16B, V1.16B
	WORD $0x4e6068b0 // SADALP V16.4S, V5.8H
	SUBS $16, R10, R10
	BNE  neon_loop1

	VADDP V16.S4, V16.S4, V20.S4
	VADDP V20.S4, V20.S4, V20.S4
	VMOV  V20.S[0], R11
	MOVW  R11, (R0)
	ADD   $4, R0, R0
	SUB   $1, R3, R3
	B     neon_rows1

neon_done:
	RET

// func matVecSDOT(dst *int32, w, x *int8, rows, cols int)
// Same contract; SDOT (ARMv8.2 dot product, Cortex-A76 / Pi 5) sums four
// int8 products into each int32 lane with no intermediate narrowing.
TEXT ·matVecSDOT(SB), NOSPLIT, $0-40
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD x+16(FP), R2
	MOVD rows+24(FP), R3
	MOVD cols+32(FP), R4

sdot_rows4:
	CMP  $4, R3
	BLT  sdot_rows1
	MOVD R1, R5
	ADD  R4, R5, R6
	ADD  R4, R6, R7
	ADD  R4, R7, R8
	MOVD R2, R9
	MOVD R4, R10
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16

sdot_loop4:
	VLD1.P 16(R9), [V0.B16]
	VLD1.P 16(R5), [V1.B16]
	VLD1.P 16(R6), [V2.B16]
	VLD1.P 16(R7), [V3.B16]
	VLD1.P 16(R8), [V4.B16]
	WORD $0x4e819410 // SDOT V16.4S, V0.16B, V1.16B
	WORD $0x4e829411 // SDOT V17.4S, V0.16B, V2.16B
	WORD $0x4e839412 // SDOT V18.4S, V0.16B, V3.16B
	WORD $0x4e849413 // SDOT V19.4S, V0.16B, V4.16B
	SUBS $16, R10, R10
	BNE  sdot_loop4

	VADDP V17.S4, V16.S4, V20.S4
	VADDP V19.S4, V18.S4, V21.S4
	VADDP V21.S4, V20.S4, V22.S4
	VST1.P [V22.S4], 16(R0)
	ADD  R4<<2, R1, R1
	SUB  $4, R3, R3
	B    sdot_rows4

sdot_rows1:
	CBZ  R3, sdot_done
	MOVD R2, R9
	MOVD R4, R10
	VEOR V16.B16, V16.B16, V16.B16

sdot_loop1:
	VLD1.P 16(R9), [V0.B16]
	VLD1.P 16(R1), [V1.B16]
	WORD $0x4e819410 // SDOT V16.4S, V0.16B, V1.16B
	SUBS $16, R10, R10
	BNE  sdot_loop1

	VADDP V16.S4, V16.S4, V20.S4
	VADDP V20.S4, V20.S4, V20.S4
	VMOV  V20.S[0], R11
	MOVW  R11, (R0)
	ADD   $4, R0, R0
	SUB   $1, R3, R3
	B     sdot_rows1

sdot_done:
	RET
