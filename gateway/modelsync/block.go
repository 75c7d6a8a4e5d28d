package modelsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Block payload layout (docs/model-sync.md), all integers big-endian:
//
//	0   4  magic "SGB1"
//	4   8  u64 model version (the manifest's)
//	12  4  u32 block index, from 0
//	16  4  u32 data length n
//	20  32 SHA-256 of the data
//	52  n  data
const (
	blockMagic      = "SGB1"
	BlockHeaderSize = 52
)

// Block is one piece of a model file.
type Block struct {
	Version uint64
	Index   int
	Data    []byte
}

// EncodeBlock writes the payload of block index of version.
func EncodeBlock(version uint64, index int, data []byte) []byte {
	b := make([]byte, BlockHeaderSize, BlockHeaderSize+len(data))
	copy(b, blockMagic)
	binary.BigEndian.PutUint64(b[4:], version)
	binary.BigEndian.PutUint32(b[12:], uint32(index))
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	sum := sha256.Sum256(data)
	copy(b[20:], sum[:])
	return append(b, data...)
}

// SplitBlocks cuts data into the block payloads m describes.
func SplitBlocks(m Manifest, data []byte) [][]byte {
	out := make([][]byte, 0, m.Blocks)
	for i := 0; i < m.Blocks; i++ {
		lo := i * m.BlockSize
		hi := min(lo+m.BlockSize, len(data))
		out = append(out, EncodeBlock(m.Version, i, data[lo:hi]))
	}
	return out
}

// DecodeBlock parses a block payload strictly: magic, a data length equal
// to the bytes that follow, between 1 and maxData, and data matching its
// SHA-256. Every failure wraps ErrCorruptBlock. Data aliases payload.
func DecodeBlock(payload []byte, maxData int) (Block, error) {
	if len(payload) < BlockHeaderSize {
		return Block{}, fmt.Errorf("block: %d bytes, header needs %d: %w", len(payload), BlockHeaderSize, ErrCorruptBlock)
	}
	if string(payload[:4]) != blockMagic {
		return Block{}, fmt.Errorf("block: magic %q, want %q: %w", payload[:4], blockMagic, ErrCorruptBlock)
	}
	b := Block{Version: binary.BigEndian.Uint64(payload[4:]), Index: int(binary.BigEndian.Uint32(payload[12:]))}
	n := int64(binary.BigEndian.Uint32(payload[16:]))
	if n != int64(len(payload)-BlockHeaderSize) {
		return Block{}, fmt.Errorf("block %d: length field %d, %d data bytes follow: %w", b.Index, n, len(payload)-BlockHeaderSize, ErrCorruptBlock)
	}
	if n == 0 || n > int64(maxData) {
		return Block{}, fmt.Errorf("block %d: length %d, want 1 to %d: %w", b.Index, n, maxData, ErrCorruptBlock)
	}
	b.Data = payload[BlockHeaderSize:]
	sum := sha256.Sum256(b.Data)
	if !bytes.Equal(sum[:], payload[20:52]) {
		return Block{}, fmt.Errorf("block %d: data SHA-256 %x, header says %x: %w", b.Index, sum[:8], payload[20:28], ErrCorruptBlock)
	}
	return b, nil
}

// Request is the gateway's block request (JSON on .../model/request).
type Request struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	Blocks  []int  `json:"blocks"` // indexes, ascending
	Round   int    `json:"round"`  // 0 for the first request of these blocks, then 1, 2, ...
}

// Payload is the request's JSON payload.
func (r Request) Payload() []byte {
	b, _ := json.Marshal(r) // cannot fail: plain fields
	return b
}
