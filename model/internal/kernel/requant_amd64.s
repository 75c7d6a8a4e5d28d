#include "textflag.h"

// Offsets in Requant: four slices (24 bytes each) then Zero, Lo, Hi.
#define P_BIAS 0
#define P_MULT 24
#define P_LSHIFT 48
#define P_RSHIFT 72
#define P_ZERO 96
#define P_LO 100
#define P_HI 104

// func requantizeAVX2(dst *int8, acc *int32, p *Requant, n int)
TEXT ·requantizeAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ p+16(FP), AX
	MOVQ n+24(FP), R8
	MOVQ P_BIAS(AX), R9
	MOVQ P_MULT(AX), R10
	MOVQ P_LSHIFT(AX), R11
	MOVQ P_RSHIFT(AX), R12
	VPBROADCASTD P_ZERO(AX), Y12
	VPBROADCASTD P_LO(AX), Y13
	VPBROADCASTD P_HI(AX), Y14
	MOVQ $0x40000000, BX
	MOVQ BX, X15
	VPBROADCASTQ X15, Y15          // 2^30 in each int64 lane
	VPCMPEQD Y11, Y11, Y11         // all ones
	VPSRLD   $31, Y11, Y10         // int32 ones
	XORQ BX, BX

loop:
	VMOVDQU (SI)(BX*4), Y0
	VPADDD  (R9)(BX*4), Y0, Y0     // acc + bias
	VMOVDQU (R11)(BX*4), Y1
	VPSLLVD Y1, Y0, Y0             // << LShift (wraps as x·2^s in C)
	VMOVDQU (R10)(BX*4), Y1        // multipliers
	// SaturatingRoundingDoublingHighMul = floor((a·m + 2^30) / 2^31); the
	// saturating case needs m = MinInt32, which multipliers never are.
	VPMULDQ Y1, Y0, Y2             // even lanes a·m as int64
	VPSRLQ  $32, Y0, Y3
	VPSRLQ  $32, Y1, Y4
	VPMULDQ Y4, Y3, Y3             // odd lanes
	VPADDQ  Y15, Y2, Y2
	VPADDQ  Y15, Y3, Y3
	VPSRLQ  $31, Y2, Y2            // even results in the low dwords
	VPSLLQ  $1, Y3, Y3             // odd results in the high dwords
	VPBLENDD $0xaa, Y3, Y2, Y0
	// RoundingDivideByPOT by RShift.
	VMOVDQU (R12)(BX*4), Y1
	VPSLLVD Y1, Y10, Y2
	VPSUBD  Y10, Y2, Y2            // mask = 2^r − 1
	VPAND   Y2, Y0, Y3             // remainder
	VPSRLD  $1, Y2, Y2             // mask >> 1
	VPSRLD  $31, Y0, Y4            // 1 where x < 0
	VPADDD  Y4, Y2, Y2             // threshold
	VPSRAVD Y1, Y0, Y0             // x >> r
	VPCMPGTD Y2, Y3, Y3            // remainder > threshold: −1
	VPSUBD  Y3, Y0, Y0
	// Zero point, clamp, narrow to int8.
	VPADDD  Y12, Y0, Y0
	VPMAXSD Y13, Y0, Y0
	VPMINSD Y14, Y0, Y0
	VPACKSSDW Y0, Y0, Y0           // [0..3 0..3 | 4..7 4..7] int16
	VPERMQ  $0x08, Y0, Y0          // [0..3 4..7] in the low 128 bits
	VPACKSSWB X0, X0, X0
	MOVQ    X0, AX
	MOVQ    AX, (DI)(BX*1)
	ADDQ    $8, BX
	CMPQ    BX, R8
	JLT     loop

	VZEROUPPER
	RET
