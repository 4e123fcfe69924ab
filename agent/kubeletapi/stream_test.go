package kubeletapi

import (
	"errors"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rc "k8s.io/apimachinery/pkg/util/remotecommand"
)

func TestParseStreamOptions(t *testing.T) {
	tests := []struct {
		query   string
		want    streamOptions
		wantErr bool
	}{
		{query: "output=1&error=1", want: streamOptions{stdout: true, stderr: true}},
		{query: "input=1&output=true&error=1&tty=1", want: streamOptions{stdin: true, stdout: true, tty: true}}, // no stderr with a TTY
		{query: "tty=1", wantErr: true},
		{query: "output=0", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseStreamOptions(httptest.NewRequest("POST", "/exec/a/b/c?"+tc.query, nil))
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v (error %v)", tc.query, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		err    error
		status string
		reason metav1.StatusReason
		cause  string
	}{
		{name: "success", status: metav1.StatusSuccess},
		{name: "exit code", code: 3, status: metav1.StatusFailure, reason: rc.NonZeroExitCodeReason, cause: "3"},
		{name: "start failure", code: -1, err: errors.New(`exec: "x": executable file not found in $PATH`),
			status: metav1.StatusFailure, reason: metav1.StatusReasonInternalError, cause: `exec: "x": executable file not found in $PATH`},
	}
	for _, tc := range tests {
		st := exitStatus(tc.code, tc.err)
		if st.Status != tc.status || st.Reason != tc.reason {
			t.Errorf("%s: %+v", tc.name, st)
			continue
		}
		if tc.cause != "" && (st.Details == nil || len(st.Details.Causes) != 1 || st.Details.Causes[0].Message != tc.cause) {
			t.Errorf("%s: causes %+v", tc.name, st.Details)
		}
		if tc.code > 0 && st.Details.Causes[0].Type != rc.ExitCodeCauseType {
			t.Errorf("%s: cause type %q", tc.name, st.Details.Causes[0].Type)
		}
	}
}
