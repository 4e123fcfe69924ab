package raftkv

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"kedge.dev/kedge/raftstore/statedb"
)

func TestCommandRoundTrip(t *testing.T) {
	tests := []statedb.Op{
		{Kind: statedb.OpCreate, Key: "/registry/pods/default/x", Value: []byte(`{"a":1}`)},
		{Kind: statedb.OpCreate, Key: "", Value: nil},
		{Kind: statedb.OpUpdate, Key: "k", Value: bytes.Repeat([]byte{0xff}, 70000), ExpectModRev: 1 << 40},
		{Kind: statedb.OpUpdate, Key: "k", Value: []byte{}, ExpectModRev: 0},
		{Kind: statedb.OpDelete, Key: "k\x00\xff", ExpectModRev: 7},
		{Kind: statedb.OpCompact, Revision: 123456},
	}
	for _, op := range tests {
		data, err := encodeOp(op)
		if err != nil {
			t.Fatalf("encode %+v: %v", op, err)
		}
		got, err := decodeOp(data)
		if err != nil {
			t.Fatalf("decode %+v: %v", op, err)
		}
		if op.Value == nil && op.Kind == statedb.OpCreate {
			op.Value = []byte{}
		}
		if !reflect.DeepEqual(*got, op) {
			t.Fatalf("round trip: got %+v, want %+v", *got, op)
		}
	}
}

// The wire format is persisted in raft.db: pin it.
func TestCommandFormatIsStable(t *testing.T) {
	data, _ := encodeOp(statedb.Op{Kind: statedb.OpUpdate, Key: "ab", Value: []byte("v"), ExpectModRev: 3})
	if want := []byte{cmdUpdate, 1, 2, 'a', 'b', 1, 'v', 6}; !bytes.Equal(data, want) {
		t.Fatalf("update encodes as %v, want %v", data, want)
	}
}

func TestDecodeUnknown(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		ignored    bool
		unknownErr bool
	}{
		{"unknown type", []byte{0x33, 1, 0}, false, true},
		{"unknown type ignorable", []byte{0x33 | cmdIgnorable, 1, 0}, true, false},
		{"known type future version", []byte{cmdCreate, 9, 1, 'k', 0}, false, true},
		{"known type future version ignorable", []byte{cmdCreate | cmdIgnorable, 9, 1, 'k', 0}, true, false},
		{"too short", []byte{cmdCreate}, false, true},
		{"truncated payload", []byte{cmdCreate, 1, 5, 'k'}, false, false},
		{"trailing bytes", []byte{cmdCompact, 1, 2, 0}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op, err := decodeOp(tc.data)
			if tc.ignored {
				if op != nil || err != nil {
					t.Fatalf("got %+v, %v; want ignored", op, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("decoded %+v, want an error", op)
			}
			if errors.Is(err, ErrUnknownCommand) != tc.unknownErr {
				t.Fatalf("error %v: ErrUnknownCommand %v, want %v", err, !tc.unknownErr, tc.unknownErr)
			}
		})
	}
}

// The FSM refuses an unknown command with a clear error (and no state
// change), skips an ignorable one, and still advances the applied index.
func TestFSMUnknownCommands(t *testing.T) {
	db, err := statedb.Open(context.Background(), statedb.Config{Path: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := newFSM(db, newBroadcaster(), testConfig(t, "").Logger, "", nil)
	create, _ := encodeOp(statedb.Op{Kind: statedb.OpCreate, Key: "k", Value: []byte("v")})
	resp := f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogConfiguration},
		{Index: 2, Type: raft.LogCommand, Data: []byte{0x40, 1}},
		{Index: 3, Type: raft.LogCommand, Data: []byte{0x40 | cmdIgnorable, 1, 9, 9}},
		{Index: 4, Type: raft.LogCommand, Data: create},
	})
	if r := resp[1].(*applyResponse); !errors.Is(r.Err, ErrUnknownCommand) {
		t.Fatalf("unknown command: %v", r.Err)
	}
	if r := resp[2].(*applyResponse); r.Err != nil {
		t.Fatalf("ignorable command: %v", r.Err)
	}
	if r := resp[3].(*applyResponse); r.Err != nil || r.KV.ModRevision != 2 {
		t.Fatalf("create after unknown commands: %+v", r)
	}
	if idx, _ := db.AppliedIndex(); idx != 4 {
		t.Fatalf("applied index %d, want 4", idx)
	}
	if _, err := db.Get(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if rev := db.Revision(); rev != 2 {
		t.Fatalf("revision %d, want 2: unknown commands must not change state", rev)
	}
}
