package main

import (
	"reflect"
	"testing"
)

func TestAirgapToImport(t *testing.T) {
	a := airgapMark{Size: 10, ModTime: 1}
	tests := []struct {
		name        string
		files, done map[string]airgapMark
		want        []string
	}{
		{"first start", map[string]airgapMark{"b.tar": a, "a.tar.gz": a, "notes.txt": a, airgapStateFile: a}, nil, []string{"a.tar.gz", "b.tar"}},
		{"unchanged", map[string]airgapMark{"a.tar": a}, map[string]airgapMark{"a.tar": a}, nil},
		{"rewritten", map[string]airgapMark{"a.tar": {Size: 10, ModTime: 2}}, map[string]airgapMark{"a.tar": a}, []string{"a.tar"}},
		{"resized", map[string]airgapMark{"a.tgz": {Size: 11, ModTime: 1}}, map[string]airgapMark{"a.tgz": a}, []string{"a.tgz"}},
	}
	for _, tt := range tests {
		if got := airgapToImport(tt.files, tt.done); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
