package api

import (
	"bytes"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

// contentTypeProtobuf is Kubernetes' protobuf media type. kubectl and
// client-go send request bodies of built-in kinds in it; responses are
// always JSON, which those clients accept as well.
const contentTypeProtobuf = "application/vnd.kubernetes.protobuf"

// protobufMagic starts every Kubernetes protobuf message.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

// decodeProtobuf decodes a protobuf body (the magic, then a runtime.Unknown
// envelope whose Raw holds the object) with unmarshal, checking apiVersion
// and kind against want. A nil unmarshal means the kind cannot be sent as
// protobuf.
func decodeProtobuf(data []byte, unmarshal func([]byte) error, wantAPIVersion, wantKind string) error {
	if !bytes.HasPrefix(data, protobufMagic) {
		return apierrors.NewBadRequest("the protobuf body does not start with the Kubernetes magic number")
	}
	var env runtime.Unknown
	if err := env.Unmarshal(data[len(protobufMagic):]); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the protobuf body could not be decoded: %v", err))
	}
	if env.APIVersion != wantAPIVersion || env.Kind != wantKind {
		return apierrors.NewBadRequest(fmt.Sprintf(
			"the object in the body (apiVersion %q, kind %q) does not match the URL, which expects apiVersion %q, kind %q",
			env.APIVersion, env.Kind, wantAPIVersion, wantKind))
	}
	if unmarshal == nil {
		return errUnsupportedMediaType(fmt.Sprintf("%s cannot be sent as protobuf; send JSON", wantKind))
	}
	if err := unmarshal(env.Raw); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the protobuf body could not be decoded as %s: %v", wantKind, err))
	}
	return nil
}
