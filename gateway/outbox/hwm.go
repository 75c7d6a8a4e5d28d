package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
)

// The id high-water mark is kept twice: in the database (sqlite_sequence)
// and in a sidecar file beside it (path + "-hwm"), so that no single
// damaged page, truncated WAL or replaced file can make a fresh outbox
// reuse an id the cloud has already seen.
//
// The sidecar holds two 64-byte slots written alternately in place (no new
// blocks are needed on a full filesystem), each with a CRC: a torn write
// spoils one slot, and the other still holds the previous mark. A slot
// records the database's instance (a random id in table meta), the
// highest id committed (written without fsync after every commit that
// assigned ids: the database's own fsync already made those durable) and
// the reservation: no id above it has been assigned. The reservation moves
// ahead in steps of hwmStep, each written with fsync before the commit
// that needs it. A fresh outbox replacing a damaged one starts above the
// reservation.

const (
	hwmStep   = 1 << 20
	hwmSlot   = 64
	hwmMagic  = "SGHW"
	hwmLayout = 4 + 16 + 8 + 8 + 8 // magic, instance, committed, reserved, generation
)

// hwmPath is the sidecar of the database at path.
func hwmPath(path string) string { return path + "-hwm" }

// hwMark is one slot of the sidecar.
type hwMark struct {
	instance  [16]byte
	committed int64
	reserved  int64
	gen       uint64
}

func (m hwMark) encode() []byte {
	b := make([]byte, hwmSlot)
	copy(b, hwmMagic)
	copy(b[4:], m.instance[:])
	binary.BigEndian.PutUint64(b[20:], uint64(m.committed))
	binary.BigEndian.PutUint64(b[28:], uint64(m.reserved))
	binary.BigEndian.PutUint64(b[36:], m.gen)
	binary.BigEndian.PutUint32(b[hwmLayout:], crc32.ChecksumIEEE(b[:hwmLayout]))
	return b
}

func decodeMark(b []byte) (hwMark, bool) {
	if len(b) < hwmSlot || string(b[:4]) != hwmMagic || binary.BigEndian.Uint32(b[hwmLayout:]) != crc32.ChecksumIEEE(b[:hwmLayout]) {
		return hwMark{}, false
	}
	var m hwMark
	copy(m.instance[:], b[4:20])
	m.committed = int64(binary.BigEndian.Uint64(b[20:]))
	m.reserved = int64(binary.BigEndian.Uint64(b[28:]))
	m.gen = binary.BigEndian.Uint64(b[36:])
	return m, true
}

// readMark returns the newest valid slot of the sidecar of path; ok is
// false if there is none (no file, or both slots damaged).
func readMark(path string) (m hwMark, ok bool, err error) {
	b, err := os.ReadFile(hwmPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return hwMark{}, false, nil
	}
	if err != nil {
		return hwMark{}, false, fmt.Errorf("outbox: read high-water mark %s: %w", hwmPath(path), err)
	}
	for i := 0; i+hwmSlot <= len(b) && i < 2*hwmSlot; i += hwmSlot {
		if s, good := decodeMark(b[i : i+hwmSlot]); good && (!ok || s.gen > m.gen) {
			m, ok = s, true
		}
	}
	return m, ok, nil
}

// hwmFile is the open sidecar of a running outbox (writer only).
type hwmFile struct {
	f    *os.File
	mark hwMark
}

// openMark opens (creating) the sidecar of path and writes m into it with
// fsync.
func openMark(path string, m hwMark) (*hwmFile, error) {
	f, err := os.OpenFile(hwmPath(path), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("outbox: open high-water mark %s: %w", hwmPath(path), err)
	}
	h := &hwmFile{f: f, mark: m}
	if err := h.write(true); err != nil {
		f.Close()
		return nil, err
	}
	// The other slot too, so both hold a valid mark from the start.
	if err := h.write(true); err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}

// write writes the mark into the next slot, with fsync if sync.
func (h *hwmFile) write(sync bool) error {
	h.mark.gen++
	if _, err := h.f.WriteAt(h.mark.encode(), int64(h.mark.gen%2)*hwmSlot); err != nil {
		return fmt.Errorf("outbox: write high-water mark %s: %w", h.f.Name(), err)
	}
	if sync {
		if err := h.f.Sync(); err != nil {
			return fmt.Errorf("outbox: sync high-water mark %s: %w", h.f.Name(), err)
		}
	}
	return nil
}

func (h *hwmFile) close() error { return h.f.Close() }
