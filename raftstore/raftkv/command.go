package raftkv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"kedge.dev/kedge/raftstore/statedb"
)

// Raft command format, version 1:
//
//	byte 0: command type; bit 0x80 set means "ignorable": a server that
//	        does not know the type skips the entry instead of refusing it
//	        (Nomad's IgnoreUnknownTypeFlag), for commands that only add
//	        optional information during a rolling upgrade.
//	byte 1: encoding version of that command type.
//	rest:   fields, each a uvarint length + bytes, or a varint.
//
// The numbers are persisted in raft.db and snapshots: never reuse or renumber
// them. A new field or meaning gets a new version or a new type; the leader
// must only emit it once every server understands it.
const (
	cmdCreate  byte = 1
	cmdUpdate  byte = 2
	cmdDelete  byte = 3
	cmdCompact byte = 4

	cmdIgnorable byte = 0x80

	cmdVersion1 byte = 1
)

// ErrUnknownCommand is the result of a raft entry this server cannot decode
// and may not skip: the entry is refused without changing the state.
var ErrUnknownCommand = errors.New("unknown raft command")

// encodeOp encodes op as a version-1 raft command.
func encodeOp(op statedb.Op) ([]byte, error) {
	var b []byte
	switch op.Kind {
	case statedb.OpCreate:
		b = []byte{cmdCreate, cmdVersion1}
		b = appendBytes(b, []byte(op.Key))
		b = appendBytes(b, op.Value)
	case statedb.OpUpdate:
		b = []byte{cmdUpdate, cmdVersion1}
		b = appendBytes(b, []byte(op.Key))
		b = appendBytes(b, op.Value)
		b = binary.AppendVarint(b, op.ExpectModRev)
	case statedb.OpDelete:
		b = []byte{cmdDelete, cmdVersion1}
		b = appendBytes(b, []byte(op.Key))
		b = binary.AppendVarint(b, op.ExpectModRev)
	case statedb.OpCompact:
		b = []byte{cmdCompact, cmdVersion1}
		b = binary.AppendVarint(b, op.Revision)
	default:
		return nil, fmt.Errorf("encode raft command: unknown op kind %d", op.Kind)
	}
	return b, nil
}

// decodeOp decodes a raft command. It returns (nil, nil) for an unknown
// command flagged ignorable, and an error wrapping ErrUnknownCommand for an
// unknown type or version without the flag.
func decodeOp(data []byte) (*statedb.Op, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("decode raft command: %d bytes, want at least 2: %w", len(data), ErrUnknownCommand)
	}
	typ, version := data[0], data[1]
	d := decoder{buf: data[2:]}
	var op statedb.Op
	known := version == cmdVersion1
	switch typ &^ cmdIgnorable {
	case cmdCreate:
		op.Kind = statedb.OpCreate
		op.Key = string(d.bytes())
		op.Value = d.bytes()
	case cmdUpdate:
		op.Kind = statedb.OpUpdate
		op.Key = string(d.bytes())
		op.Value = d.bytes()
		op.ExpectModRev = d.varint()
	case cmdDelete:
		op.Kind = statedb.OpDelete
		op.Key = string(d.bytes())
		op.ExpectModRev = d.varint()
	case cmdCompact:
		op.Kind = statedb.OpCompact
		op.Revision = d.varint()
	default:
		known = false
	}
	if !known {
		if typ&cmdIgnorable != 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("raft command type %d version %d is not known to this kedge version: %w; "+
			"Try: upgrade this server to the version the leader runs", typ, version, ErrUnknownCommand)
	}
	if d.err != nil || len(d.buf) != 0 {
		return nil, fmt.Errorf("decode raft command type %d: malformed payload (%d bytes left, %v)", typ, len(d.buf), d.err)
	}
	return &op, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

type decoder struct {
	buf []byte
	err error
}

var errShort = errors.New("truncated field")

func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, k := binary.Uvarint(d.buf)
	if k <= 0 || uint64(len(d.buf)-k) < n {
		d.err = errShort
		return nil
	}
	v := make([]byte, n)
	copy(v, d.buf[k:k+int(n)])
	d.buf = d.buf[k+int(n):]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.buf)
	if k <= 0 {
		d.err = errShort
		return 0
	}
	d.buf = d.buf[k:]
	return v
}
