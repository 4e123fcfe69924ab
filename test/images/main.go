// Command images builds the stand-in test images (see
// shared/manifests/README.md): one archive per image plus all.tar holding
// every image, deterministic so that digests are stable across builds.
//
//	go run ./test/images -out build/images [-format docker|oci] [-busybox /usr/bin/busybox]
//
// It needs the go tool (to build test/images/liveness statically) and
// Debian's busybox-static.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"kedge.dev/kedge/test/images/imagebuild"
)

func main() {
	out := flag.String("out", "build/images", "output directory")
	format := flag.String("format", "docker", "archive format: docker or oci")
	busybox := flag.String("busybox", "/usr/bin/busybox", "static busybox binary")
	flag.Parse()
	if err := run(*out, *format, *busybox, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(out, format, busybox string, progress io.Writer) error {
	if format != "docker" && format != "oci" {
		return fmt.Errorf("unknown -format %q (docker or oci)", format)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	server, err := BuildLiveness(out)
	if err != nil {
		return err
	}
	imgs, err := imagebuild.StandIns(busybox, server)
	if err != nil {
		return err
	}
	write := func(w io.Writer, imgs ...imagebuild.Built) error {
		if format == "oci" {
			return imagebuild.WriteOCILayout(w, imagebuild.OCIOptions{}, imgs...)
		}
		return imagebuild.WriteDockerArchive(w, imgs...)
	}
	for _, img := range imgs {
		var buf bytes.Buffer
		if err := write(&buf, img); err != nil {
			return err
		}
		p := filepath.Join(out, imagebuild.FileName(img.Names[0])+".tar")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(progress, "%s\t%s\t%s\n", img.Names[0], img.ConfigDigest, p)
	}
	var all bytes.Buffer
	if err := write(&all, imgs...); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "all.tar"), all.Bytes(), 0o644)
}

// BuildLiveness compiles test/images/liveness as a static, reproducible
// binary and returns it.
func BuildLiveness(scratch string) ([]byte, error) {
	bin := filepath.Join(scratch, ".liveness-server")
	defer os.Remove(bin)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, "kedge.dev/kedge/test/images/liveness")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build liveness server: %w", err)
	}
	return os.ReadFile(bin)
}
