#include "textflag.h"

// func matVecAVX2(dst *int32, w, x *int8, rows, cols int)
// Requires rows > 0, cols > 0 and cols % 32 == 0.
TEXT ·matVecAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ cols+32(FP), R9

	// Y14 = sixteen int16 ones for VPMADDWD.
	MOVL $0x00010001, AX
	MOVQ AX, X14
	VPBROADCASTD X14, Y14

rows4:
	CMPQ R8, $4
	JLT  rows1
	MOVQ SI, R10
	LEAQ (R10)(R9*1), R11
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*1), R13
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	XORQ BX, BX

loop4:
	VMOVDQU    (DX)(BX*1), Y4
	VPABSB     Y4, Y5
	VMOVDQU    (R10)(BX*1), Y6
	VMOVDQU    (R11)(BX*1), Y7
	VMOVDQU    (R12)(BX*1), Y8
	VMOVDQU    (R13)(BX*1), Y9
	VPSIGNB    Y4, Y6, Y6
	VPSIGNB    Y4, Y7, Y7
	VPSIGNB    Y4, Y8, Y8
	VPSIGNB    Y4, Y9, Y9
	VPMADDUBSW Y6, Y5, Y6
	VPMADDUBSW Y7, Y5, Y7
	VPMADDUBSW Y8, Y5, Y8
	VPMADDUBSW Y9, Y5, Y9
	VPMADDWD   Y14, Y6, Y6
	VPMADDWD   Y14, Y7, Y7
	VPMADDWD   Y14, Y8, Y8
	VPMADDWD   Y14, Y9, Y9
	VPADDD     Y6, Y0, Y0
	VPADDD     Y7, Y1, Y1
	VPADDD     Y8, Y2, Y2
	VPADDD     Y9, Y3, Y3
	ADDQ       $32, BX
	CMPQ       BX, R9
	JLT        loop4

	// Reduce the four accumulators to dst[0..3].
	VPHADDD      Y1, Y0, Y0
	VPHADDD      Y3, Y2, Y2
	VPHADDD      Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VMOVDQU      X0, (DI)

	ADDQ $16, DI
	LEAQ (SI)(R9*4), SI
	SUBQ $4, R8
	JMP  rows4

rows1:
	TESTQ R8, R8
	JEQ   done
	VPXOR Y0, Y0, Y0
	XORQ  BX, BX

loop1:
	VMOVDQU    (DX)(BX*1), Y4
	VPABSB     Y4, Y5
	VMOVDQU    (SI)(BX*1), Y6
	VPSIGNB    Y4, Y6, Y6
	VPMADDUBSW Y6, Y5, Y6
	VPMADDWD   Y14, Y6, Y6
	VPADDD     Y6, Y0, Y0
	ADDQ       $32, BX
	CMPQ       BX, R9
	JLT        loop1

	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPADDD       X1, X0, X0
	MOVL         X0, AX
	MOVL         AX, (DI)

	ADDQ $4, DI
	ADDQ R9, SI
	DECQ R8
	JMP  rows1

done:
	VZEROUPPER
	RET
