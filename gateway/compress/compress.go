// Package compress compresses Shelfgate batches with zstd
// (github.com/klauspost/compress) for links where bytes cost more than CPU
// (cellular backhaul). A compressed payload is a plain zstd frame, told
// apart from a JSON batch by the zstd magic number, so consumers accept both.
//
// Decompression is bounded: a payload that would expand beyond the limit is
// rejected, so a hostile message cannot exhaust memory.
package compress

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// ErrTooLarge is returned for a payload that expands beyond the limit.
var ErrTooLarge = errors.New("compress: payload expands beyond the limit")

// ErrCorrupt is returned for a payload that is not a valid zstd frame.
var ErrCorrupt = errors.New("compress: corrupt zstd payload")

var magic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// IsCompressed reports whether p starts like a zstd frame.
func IsCompressed(p []byte) bool { return bytes.HasPrefix(p, magic) }

// Encoder compresses payloads. It is safe for concurrent use.
type Encoder struct{ enc *zstd.Encoder }

// NewEncoder returns an encoder at zstd's default (fast) level.
func NewEncoder() (*Encoder, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return &Encoder{enc: enc}, nil
}

// Compress appends the compressed form of src to dst.
func (e *Encoder) Compress(dst, src []byte) []byte { return e.enc.EncodeAll(src, dst) }

// Decoder decompresses payloads up to a size limit. It is safe for
// concurrent use.
type Decoder struct {
	dec   *zstd.Decoder
	limit int
}

// NewDecoder returns a decoder that refuses output larger than limit bytes.
func NewDecoder(limit int) (*Decoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return &Decoder{dec: dec, limit: limit}, nil
}

// Decompress returns the decompressed payload.
func (d *Decoder) Decompress(p []byte) ([]byte, error) {
	out, err := d.dec.DecodeAll(p, nil)
	if err != nil {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || len(out) >= d.limit {
			return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, d.limit)
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return out, nil
}
