package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Salvage reads a damaged outbox file directly, page by page, as SQLite's
// .recover does, without SQLite: it overlays the valid committed frames of
// the file's WAL (path + "-wal"), walks the outbox table's b-tree from its
// root where the schema page is readable, tolerating every unreadable page
// and cell, and decodes every row it can reach. Pages the walk cannot reach
// (or every page, when the schema is unreadable) are scanned for rows of
// the outbox's shape whose ids fall in the ranges the walk lost. What could
// not be read is reported as id ranges.

// Salvaged is what Salvage read from a damaged outbox.
type Salvaged struct {
	Path     string
	PageSize int
	Pages    int   // pages examined (main file and WAL)
	BadPages []int // pages that were unreadable where the b-tree needed them

	// Rows are the readable rows of table outbox, by id, with Stream and
	// Unit resolved from table streams (unknown/<n> when that row is lost).
	Rows []gateway.Record
	// Streams are the readable rows of table streams.
	Streams []SalvagedStream
	// HighWater is the highest id the file shows it used: sqlite_sequence,
	// or the highest row id read, whichever is higher.
	HighWater int64
	// Missing are the id ranges the outbox table held that could not be
	// read (a range's ends are bounds: not every id in it was in use).
	Missing []IDRange
	// Schema reports whether the schema page was readable and named the
	// outbox table.
	Schema bool
	// Commands are the readable recorded commands (RecordCommand), and
	// Secret the secret (Secret) if readable: carried into the fresh
	// outbox so a replayed command still runs once and acks of batches
	// sent before the damage are still recognised.
	Commands []SalvagedCommand
	Secret   []byte
}

// SalvagedCommand is one row of table commands.
type SalvagedCommand struct {
	ID     string
	At     time.Time
	Result []byte
}

// SalvagedStream is one row of table streams.
type SalvagedStream struct {
	ID      int64
	Name    gateway.StreamID
	Unit    string
	LastSeq uint64
}

// IDRange is an inclusive range of row ids.
type IDRange struct{ Lo, Hi int64 }

// MaxSeq returns the highest sequence number the salvaged file shows for
// each stream name: its streams row or its highest row read.
func (s *Salvaged) MaxSeq() map[gateway.StreamID]uint64 {
	m := map[gateway.StreamID]uint64{}
	for _, st := range s.Streams {
		m[st.Name] = max(m[st.Name], st.LastSeq)
	}
	for _, r := range s.Rows {
		m[r.Stream] = max(m[r.Stream], r.Seq)
	}
	return m
}

// ErrNotOutbox means a file holds no page of an SQLite database.
var ErrNotOutbox = errors.New("no SQLite pages found")

// maxSalvagePages bounds the pages Salvage reads (64 GiB of 4 KiB pages):
// a header claiming more is damaged.
const maxSalvagePages = 1 << 24

// Salvage reads what it can of the outbox file at path and its WAL.
func Salvage(path string) (*Salvaged, error) {
	main, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("outbox: salvage %s: %w", path, err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("outbox: salvage %s: read WAL: %w", path, err)
	}
	s, err := salvageBytes(main, wal)
	if err != nil {
		return nil, fmt.Errorf("outbox: salvage %s: %w", path, err)
	}
	s.Path = path
	return s, nil
}

// pager serves pages from the main file overlaid with the WAL.
type pager struct {
	main     []byte
	wal      map[int][]byte
	pageSize int
	usable   int
	count    int
}

func (p *pager) page(n int) []byte {
	if n < 1 || n > p.count {
		return nil
	}
	if b, ok := p.wal[n]; ok {
		return b
	}
	off := (n - 1) * p.pageSize
	if off+p.pageSize > len(p.main) {
		return nil
	}
	return p.main[off : off+p.pageSize]
}

func salvageBytes(main, wal []byte) (*Salvaged, error) {
	p := &pager{main: main}
	hdrOK := len(main) >= 100 && bytes.HasPrefix(main, []byte("SQLite format 3\x00"))
	reserved := 0
	if hdrOK {
		p.pageSize = int(binary.BigEndian.Uint16(main[16:18]))
		if p.pageSize == 1 {
			p.pageSize = 65536
		}
		reserved = int(main[20])
	}
	walPS, frames := readWAL(wal)
	if !validPageSize(p.pageSize) {
		p.pageSize = walPS
	}
	if !validPageSize(p.pageSize) {
		p.pageSize = 4096 // SQLite's default
	}
	if walPS != 0 && walPS != p.pageSize {
		frames = nil // a WAL of another database
	}
	p.usable = p.pageSize - reserved
	if p.usable < 480 {
		p.usable = p.pageSize
	}
	p.count = len(main) / p.pageSize
	p.wal = map[int][]byte{}
	for _, f := range frames {
		p.wal[f.page] = f.data
		p.count = max(p.count, f.page)
	}
	if p.count == 0 {
		return nil, ErrNotOutbox
	}
	p.count = min(p.count, maxSalvagePages)
	s := &Salvaged{PageSize: p.pageSize, Pages: p.count}
	r := &recovery{p: p, s: s, reached: map[int]bool{}, rows: map[int64]rawRow{}}
	r.run()
	return s, nil
}

func validPageSize(n int) bool { return n >= 512 && n <= 65536 && n&(n-1) == 0 }

type walFrame struct {
	page int
	data []byte
}

// readWAL returns the WAL's page size and its frames up to the last valid
// commit frame (salts and the running checksum verified), in order.
func readWAL(wal []byte) (pageSize int, frames []walFrame) {
	if len(wal) < 32 {
		return 0, nil
	}
	magic := binary.BigEndian.Uint32(wal[0:4])
	if magic != 0x377f0682 && magic != 0x377f0683 {
		return 0, nil
	}
	var order binary.ByteOrder = binary.LittleEndian
	if magic&1 == 1 {
		order = binary.BigEndian
	}
	pageSize = int(binary.BigEndian.Uint32(wal[8:12]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if !validPageSize(pageSize) {
		return 0, nil
	}
	s1, s2 := walChecksum(order, wal[0:24], 0, 0)
	if s1 != binary.BigEndian.Uint32(wal[24:28]) || s2 != binary.BigEndian.Uint32(wal[28:32]) {
		return 0, nil
	}
	salt := wal[16:24]
	var pending []walFrame
	for off := 32; off+24+pageSize <= len(wal); off += 24 + pageSize {
		h := wal[off : off+24]
		if !bytes.Equal(h[8:16], salt) {
			break
		}
		s1, s2 = walChecksum(order, h[0:8], s1, s2)
		s1, s2 = walChecksum(order, wal[off+24:off+24+pageSize], s1, s2)
		if s1 != binary.BigEndian.Uint32(h[16:20]) || s2 != binary.BigEndian.Uint32(h[20:24]) {
			break
		}
		pending = append(pending, walFrame{page: int(binary.BigEndian.Uint32(h[0:4])), data: wal[off+24 : off+24+pageSize]})
		if binary.BigEndian.Uint32(h[4:8]) != 0 { // a commit frame
			frames = append(frames, pending...)
			pending = pending[:0]
		}
	}
	return pageSize, frames
}

// walChecksum is SQLite's WAL checksum over b (a multiple of 8 bytes).
func walChecksum(order binary.ByteOrder, b []byte, s1, s2 uint32) (uint32, uint32) {
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += order.Uint32(b[i:]) + s2
		s2 += order.Uint32(b[i+4:]) + s1
	}
	return s1, s2
}

// rawRow is a decoded table row: its rowid and values (int64, float64,
// string, []byte or nil).
type rawRow struct {
	rowid int64
	vals  []any
}

type recovery struct {
	p       *pager
	s       *Salvaged
	reached map[int]bool     // pages the outbox tree walk visited
	rows    map[int64]rawRow // outbox rows by id
	missing []IDRange
}

func (r *recovery) run() {
	roots := r.schema()
	seqHW := int64(0)
	var streams []rawRow
	if root, ok := roots["sqlite_sequence"]; ok {
		r.walk(root, math.MinInt64, math.MaxInt64, 0, func(row rawRow) {
			if len(row.vals) == 2 {
				if name, ok := row.vals[0].(string); ok && name == "outbox" {
					if n, ok := row.vals[1].(int64); ok {
						seqHW = max(seqHW, n)
					}
				}
			}
		}, map[int]bool{}, false)
	}
	if root, ok := roots["streams"]; ok {
		r.walk(root, math.MinInt64, math.MaxInt64, 0, func(row rawRow) {
			if isStreamRow(row) {
				streams = append(streams, row)
			}
		}, map[int]bool{}, false)
	}
	if root, ok := roots["commands"]; ok {
		r.walk(root, math.MinInt64, math.MaxInt64, 0, func(row rawRow) {
			v := row.vals
			if len(v) != 4 || v[0] != nil {
				return
			}
			id, ok1 := v[1].(string)
			at, ok2 := v[2].(int64)
			res, ok3 := v[3].([]byte)
			if ok1 && ok2 && ok3 && id != "" {
				r.s.Commands = append(r.s.Commands, SalvagedCommand{ID: id, At: time.UnixMicro(at), Result: res})
			}
		}, map[int]bool{}, false)
	}
	if root, ok := roots["meta"]; ok {
		r.walk(root, math.MinInt64, math.MaxInt64, 0, func(row rawRow) {
			if len(row.vals) == 2 {
				if k, ok := row.vals[0].(string); ok && k == secretKey {
					if b, ok := row.vals[1].([]byte); ok && len(b) == secretBytes {
						r.s.Secret = b
					}
				}
			}
		}, map[int]bool{}, false)
	}
	if root, ok := roots["outbox"]; ok {
		r.s.Schema = true
		outboxPages := map[int]bool{}
		r.walk(root, 0, math.MaxInt64, 0, func(row rawRow) {
			if isOutboxRow(row) {
				r.rows[row.rowid] = row
			}
		}, outboxPages, true)
		r.reached = outboxPages
	} else {
		r.missing = []IDRange{{1, math.MaxInt64}}
	}
	// Orphans: rows of the outbox's shape on pages the walk did not reach,
	// kept where they fill a range the walk lost; streams rows likewise
	// when the streams table was unreadable.
	if len(r.missing) > 0 || len(streams) == 0 {
		for n := 1; n <= r.p.count; n++ {
			if r.reached[n] {
				continue
			}
			pg := r.p.page(n)
			if pg == nil {
				continue
			}
			for _, row := range r.leafRows(pg, n) {
				switch {
				case isOutboxRow(row) && r.inMissing(row.rowid):
					if old, ok := r.rows[row.rowid]; !ok || old.vals[4].(int64) < row.vals[4].(int64) {
						r.rows[row.rowid] = row // the newest version (an extended notice)
					}
				case len(streams) == 0 && isStreamRow(row):
					streams = append(streams, row)
				}
			}
		}
	}
	names := map[int64]SalvagedStream{}
	for _, row := range streams {
		st := SalvagedStream{ID: row.rowid, Name: gateway.StreamID(row.vals[1].(string)), Unit: row.vals[2].(string), LastSeq: uint64(row.vals[3].(int64))}
		if old, ok := names[st.ID]; !ok || st.LastSeq > old.LastSeq {
			names[st.ID] = st
		}
	}
	for _, st := range names {
		r.s.Streams = append(r.s.Streams, st)
	}
	sort.Slice(r.s.Streams, func(i, j int) bool { return r.s.Streams[i].ID < r.s.Streams[j].ID })
	ids := make([]int64, 0, len(r.rows))
	for id := range r.rows {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	r.s.HighWater = seqHW
	for _, id := range ids {
		row := r.rows[id]
		rec := gateway.Record{
			ID: id, Seq: uint64(row.vals[2].(int64)), Class: gateway.Class(row.vals[3].(int64)),
			Time: time.UnixMicro(row.vals[4].(int64)), Value: toFloat(row.vals[5]),
			Quality: gateway.Quality(row.vals[6].(int64)),
		}
		if b, ok := row.vals[7].([]byte); ok {
			rec.Body = b
		}
		sid := row.vals[1].(int64)
		if st, ok := names[sid]; ok {
			rec.Stream, rec.Unit = st.Name, st.Unit
		} else {
			rec.Stream = gateway.StreamID(fmt.Sprintf("unknown/%d", sid))
		}
		r.s.Rows = append(r.s.Rows, rec)
		r.s.HighWater = max(r.s.HighWater, id)
	}
	r.s.Missing = mergeRanges(r.trimMissing(ids))
}

// mergeRanges sorts rs and joins overlapping and adjacent ranges.
func mergeRanges(rs []IDRange) []IDRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	var out []IDRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.Lo <= out[n-1].Hi+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// inMissing reports whether id falls in a range the walk lost.
func (r *recovery) inMissing(id int64) bool {
	for _, m := range r.missing {
		if id >= m.Lo && id <= m.Hi {
			return true
		}
	}
	return false
}

// trimMissing returns the lost ranges less the ids recovered from orphan
// pages, as ranges between the recovered ids: ranges that recovered rows
// fill completely (neighbouring ids) disappear.
func (r *recovery) trimMissing(ids []int64) []IDRange {
	var out []IDRange
	for _, m := range r.missing {
		lo := m.Lo
		i := sort.Search(len(ids), func(i int) bool { return ids[i] >= m.Lo })
		for ; i < len(ids) && ids[i] <= m.Hi; i++ {
			if ids[i] > lo {
				out = append(out, IDRange{lo, ids[i] - 1})
			}
			lo = ids[i] + 1
		}
		if lo <= m.Hi {
			hi := m.Hi
			if hi == math.MaxInt64 {
				// Unbounded above: ids up to the high-water mark.
				hi = max(r.s.HighWater, lo)
				if hi < lo || (len(ids) > 0 && lo > ids[len(ids)-1] && r.s.HighWater < lo) {
					continue
				}
			}
			out = append(out, IDRange{lo, hi})
		}
	}
	return out
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return 0
}

// isOutboxRow reports whether row has the shape of a row of table outbox:
// id (the rowid), stream, seq, class, ts, value, quality, body.
func isOutboxRow(row rawRow) bool {
	v := row.vals
	if len(v) != 8 || row.rowid <= 0 || v[0] != nil {
		return false
	}
	for _, i := range []int{1, 2, 3, 4, 6} {
		if _, ok := v[i].(int64); !ok {
			return false
		}
	}
	if c := v[3].(int64); c != 0 && c != 1 {
		return false
	}
	switch v[5].(type) {
	case int64, float64:
	default:
		return false
	}
	switch v[7].(type) {
	case nil, []byte:
	default:
		return false
	}
	return true
}

// isStreamRow reports whether row has the shape of a row of table streams:
// id, name, unit, last_seq.
func isStreamRow(row rawRow) bool {
	v := row.vals
	if len(v) != 4 || v[0] != nil {
		return false
	}
	name, ok1 := v[1].(string)
	_, ok2 := v[2].(string)
	_, ok3 := v[3].(int64)
	return ok1 && ok2 && ok3 && name != ""
}

// schema returns the root pages of the tables named in sqlite_schema.
func (r *recovery) schema() map[string]int {
	roots := map[string]int{}
	r.walk(1, math.MinInt64, math.MaxInt64, 0, func(row rawRow) {
		if len(row.vals) != 5 {
			return
		}
		typ, _ := row.vals[0].(string)
		name, _ := row.vals[1].(string)
		root, _ := row.vals[3].(int64)
		if typ == "table" && root > 0 && root <= int64(r.p.count) {
			roots[name] = int(root)
		}
	}, map[int]bool{}, false)
	return roots
}

// walk visits the table b-tree rooted at page n, whose keys lie in
// (lo, hi], calling fn for every row it can decode. A page it cannot read
// loses its key range (recorded when visited is the outbox's page set).
func (r *recovery) walk(n int, lo, hi int64, depth int, fn func(rawRow), visited map[int]bool, outbox bool) {
	lose := func() {
		if outbox {
			r.s.BadPages = append(r.s.BadPages, n)
			r.missing = append(r.missing, IDRange{max(lo+1, 1), hi})
		}
	}
	if depth > 20 || visited[n] {
		lose()
		return
	}
	pg := r.p.page(n)
	if pg == nil {
		lose()
		return
	}
	visited[n] = true
	hdr := 0
	if n == 1 {
		hdr = 100
	}
	if len(pg) < hdr+12 {
		lose()
		return
	}
	switch pg[hdr] {
	case 0x0d:
		for _, row := range r.leafRows(pg, n) {
			if row.rowid > lo && row.rowid <= hi {
				fn(row)
			}
		}
	case 0x05:
		cells := int(binary.BigEndian.Uint16(pg[hdr+3:]))
		right := int(binary.BigEndian.Uint32(pg[hdr+8:]))
		prev := lo
		for i := range cells {
			ptr := hdr + 12 + 2*i
			if ptr+2 > len(pg) {
				break
			}
			off := int(binary.BigEndian.Uint16(pg[ptr:]))
			if off+5 > len(pg) {
				continue
			}
			child := int(binary.BigEndian.Uint32(pg[off:]))
			key, k := varint(pg[off+4:])
			if k == 0 || key < prev || key > hi {
				continue
			}
			r.walk(child, prev, key, depth+1, fn, visited, outbox)
			prev = key
		}
		r.walk(right, prev, hi, depth+1, fn, visited, outbox)
	default:
		lose()
	}
}

// leafRows decodes the cells of table leaf page pg (page number n), skipping
// cells it cannot decode. It returns nil for other pages.
func (r *recovery) leafRows(pg []byte, n int) []rawRow {
	hdr := 0
	if n == 1 {
		hdr = 100
	}
	if len(pg) < hdr+8 || pg[hdr] != 0x0d {
		return nil
	}
	cells := int(binary.BigEndian.Uint16(pg[hdr+3:]))
	var out []rawRow
	for i := range cells {
		ptr := hdr + 8 + 2*i
		if ptr+2 > len(pg) {
			break
		}
		off := int(binary.BigEndian.Uint16(pg[ptr:]))
		if row, ok := r.cell(pg, off); ok {
			out = append(out, row)
		}
	}
	return out
}

// cell decodes the table leaf cell at off, following overflow pages.
func (r *recovery) cell(pg []byte, off int) (rawRow, bool) {
	if off <= 0 || off >= len(pg) {
		return rawRow{}, false
	}
	size, k := varint(pg[off:])
	if k == 0 || size < 0 || size > 1<<30 {
		return rawRow{}, false
	}
	off += k
	rowid, k := varint(pg[off:])
	if k == 0 {
		return rawRow{}, false
	}
	off += k
	u := r.p.usable
	x := u - 35
	local := int(size)
	if local > x {
		m := ((u-12)*32/255 - 23)
		kk := m + (int(size)-m)%(u-4)
		local = m
		if kk <= x {
			local = kk
		}
	}
	if off+local > len(pg) {
		return rawRow{}, false
	}
	payload := pg[off : off+local]
	if local < int(size) {
		if off+local+4 > len(pg) {
			return rawRow{}, false
		}
		next := int(binary.BigEndian.Uint32(pg[off+local:]))
		buf := append([]byte(nil), payload...)
		for hops := 0; len(buf) < int(size); hops++ {
			ov := r.p.page(next)
			if ov == nil || hops > r.p.count {
				return rawRow{}, false
			}
			take := min(int(size)-len(buf), u-4)
			if 4+take > len(ov) {
				return rawRow{}, false
			}
			buf = append(buf, ov[4:4+take]...)
			next = int(binary.BigEndian.Uint32(ov[0:4]))
		}
		payload = buf
	}
	vals, ok := record(payload)
	if !ok {
		return rawRow{}, false
	}
	return rawRow{rowid: rowid, vals: vals}, true
}

// record decodes an SQLite record.
func record(b []byte) ([]any, bool) {
	hsize, k := varint(b)
	if k == 0 || hsize < int64(k) || hsize > int64(len(b)) {
		return nil, false
	}
	var types []int64
	for p := k; p < int(hsize); {
		t, n := varint(b[p:int(hsize)])
		if n == 0 {
			return nil, false
		}
		types = append(types, t)
		p += n
	}
	body := b[hsize:]
	vals := make([]any, 0, len(types))
	for _, t := range types {
		var n int
		switch {
		case t == 0, t == 8, t == 9:
			n = 0
		case t >= 1 && t <= 4:
			n = int(t)
		case t == 5:
			n = 6
		case t == 6, t == 7:
			n = 8
		case t >= 12:
			n = int((t - 12) / 2)
		default:
			return nil, false
		}
		if n > len(body) {
			return nil, false
		}
		v := body[:n]
		body = body[n:]
		switch {
		case t == 0:
			vals = append(vals, nil)
		case t == 8:
			vals = append(vals, int64(0))
		case t == 9:
			vals = append(vals, int64(1))
		case t <= 6:
			var x int64
			for _, c := range v {
				x = x<<8 | int64(c)
			}
			// Sign-extend from n bytes.
			shift := uint(64 - 8*n)
			vals = append(vals, x<<shift>>shift)
		case t == 7:
			vals = append(vals, math.Float64frombits(binary.BigEndian.Uint64(v)))
		case t%2 == 0:
			vals = append(vals, append([]byte(nil), v...))
		default:
			vals = append(vals, string(v))
		}
	}
	return vals, true
}

// varint decodes an SQLite varint; n is 0 if b is too short.
func varint(b []byte) (v int64, n int) {
	var x uint64
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0
		}
		if i == 8 {
			x = x<<8 | uint64(b[i])
			return int64(x), 9
		}
		x = x<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return int64(x), i + 1
		}
	}
	return int64(x), 9
}
