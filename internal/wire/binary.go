package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Bulk data does not travel as JSON: base64 and JSON scanning cap a
// transfer at about 60 MB/s of CPU on the receiving side. A message type
// may instead encode its payload itself; Conn uses these encodings in place
// of JSON (compression and frame limits apply the same).
type rawEncoder interface {
	appendRaw(b []byte) []byte
	// compressible says whether compressing the frame may pay: already
	// compressed or random data only costs CPU on both sides.
	compressible() bool
}
type rawDecoder interface{ decodeRaw(b []byte) error }

// FileChunk's payload:
//
//	id u64 | offset i64 | size i64 | flags u8 (1: EOF) |
//	hash len u16 | hash | error len u32 | error | data (the rest)
func (m FileChunk) appendRaw(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Offset))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	var flags byte
	if m.EOF {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(min(len(m.Hash), 0xffff)))
	b = append(b, m.Hash[:min(len(m.Hash), 0xffff)]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Error)))
	b = append(b, m.Error...)
	return append(b, m.Data...)
}

func (m FileChunk) compressible() bool { return m.Compress }

var errShortChunk = errors.New("file_chunk payload is truncated")

func (m *FileChunk) decodeRaw(b []byte) error {
	if len(b) < 8*3+1+2 {
		return errShortChunk
	}
	m.ID = binary.BigEndian.Uint64(b)
	m.Offset = int64(binary.BigEndian.Uint64(b[8:]))
	m.Size = int64(binary.BigEndian.Uint64(b[16:]))
	flags := b[24]
	if flags&^1 != 0 {
		return fmt.Errorf("file_chunk has unknown flags %#x", flags)
	}
	m.EOF = flags&1 != 0
	n := int(binary.BigEndian.Uint16(b[25:]))
	b = b[27:]
	if len(b) < n+4 {
		return errShortChunk
	}
	m.Hash = string(b[:n])
	b = b[n:]
	e := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) < uint64(e) {
		return errShortChunk
	}
	m.Error = string(b[:e])
	m.Data = b[e:]
	if m.Offset < 0 || m.Size < 0 {
		return errors.New("file_chunk has a negative offset or size")
	}
	return nil
}
