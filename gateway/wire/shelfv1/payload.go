package shelfv1

import (
	"fmt"

	"github.com/shelfgate/shelfgate/gateway/compress"
)

// DecodePayload decodes a batch message, JSON or a zstd frame (told apart
// by the zstd magic number). zstd's output is bounded by its limit (use
// MaxBatchBytes).
func DecodePayload(zstd *compress.Decoder, p []byte) (*Batch, error) {
	if compress.IsCompressed(p) {
		raw, err := zstd.Decompress(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadBatch, err)
		}
		p = raw
	}
	return DecodeBatch(p)
}
