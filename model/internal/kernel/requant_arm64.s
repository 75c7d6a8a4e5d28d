#include "textflag.h"

// Offsets in Requant: four slices (24 bytes each) then Zero, Lo, Hi.
#define P_BIAS 0
#define P_MULT 24
#define P_LSHIFT 48
#define P_RSHIFT 72
#define P_ZERO 96
#define P_LO 100
#define P_HI 104

// func requantizeNEON(dst *int8, acc *int32, p *Requant, n int)
// Eight channels per step. SQRDMULH is exactly gemmlowp's
// SaturatingRoundingDoublingHighMul; RoundingDivideByPOT is gemmlowp's NEON
// form: add −1 to negative values (SQADD) then SRSHL by −exponent, which
// rounds ties away from zero. n must be a multiple of 8.
TEXT ·requantizeNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD acc+8(FP), R1
	MOVD p+16(FP), R2
	MOVD n+24(FP), R3
	MOVD P_BIAS(R2), R4
	MOVD P_MULT(R2), R5
	MOVD P_LSHIFT(R2), R6
	MOVD P_RSHIFT(R2), R7
	ADD  $P_ZERO, R2, R8
	VLD1R (R8), [V20.S4]
	ADD  $P_LO, R2, R8
	VLD1R (R8), [V21.S4]
	ADD  $P_HI, R2, R8
	VLD1R (R8), [V22.S4]

loop:
	VLD1.P 32(R1), [V0.S4, V1.S4]   // acc
	VLD1.P 32(R4), [V2.S4, V3.S4]   // bias
	VLD1.P 32(R6), [V4.S4, V5.S4]   // left shifts
	VLD1.P 32(R5), [V6.S4, V7.S4]   // multipliers
	VLD1.P 32(R7), [V16.S4, V17.S4] // right shifts
	WORD $0x4ea28400 // ADD V0.4S, V0.4S, V2.4S
	WORD $0x4ea38421 // ADD V1.4S, V1.4S, V3.4S
	WORD $0x4ea44400 // SSHL V0.4S, V0.4S, V4.4S
	WORD $0x4ea54421 // SSHL V1.4S, V1.4S, V5.4S
	WORD $0x6ea6b400 // SQRDMULH V0.4S, V0.4S, V6.4S
	WORD $0x6ea7b421 // SQRDMULH V1.4S, V1.4S, V7.4S
	WORD $0x6ea0ba10 // NEG V16.4S, V16.4S
	WORD $0x6ea0ba31 // NEG V17.4S, V17.4S
	WORD $0x4e301c08 // AND V8.16B, V0.16B, V16.16B
	WORD $0x4e311c29 // AND V9.16B, V1.16B, V17.16B
	WORD $0x4f210508 // SSHR V8.4S, V8.4S, #31
	WORD $0x4f210529 // SSHR V9.4S, V9.4S, #31
	WORD $0x4ea80c00 // SQADD V0.4S, V0.4S, V8.4S
	WORD $0x4ea90c21 // SQADD V1.4S, V1.4S, V9.4S
	WORD $0x4eb05400 // SRSHL V0.4S, V0.4S, V16.4S
	WORD $0x4eb15421 // SRSHL V1.4S, V1.4S, V17.4S
	WORD $0x4eb48400 // ADD V0.4S, V0.4S, V20.4S
	WORD $0x4eb48421 // ADD V1.4S, V1.4S, V20.4S
	WORD $0x4eb56400 // SMAX V0.4S, V0.4S, V21.4S
	WORD $0x4eb56421 // SMAX V1.4S, V1.4S, V21.4S
	WORD $0x4eb66c00 // SMIN V0.4S, V0.4S, V22.4S
	WORD $0x4eb66c21 // SMIN V1.4S, V1.4S, V22.4S
	WORD $0xe614809 // SQXTN V9.4H, V0.4S
	WORD $0x4e614829 // SQXTN2 V9.8H, V1.4S
	WORD $0xe214929 // SQXTN V9.8B, V9.8H
	VST1.P [V9.B8], 8(R0)
	SUBS $8, R3, R3
	BNE  loop
	RET
