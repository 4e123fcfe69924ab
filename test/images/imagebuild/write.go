package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
)

// tarWriter writes files in a fixed order with fixed metadata.
type tarWriter struct {
	tw   *tar.Writer
	seen map[string]bool
}

func newTarWriter(w io.Writer) *tarWriter {
	return &tarWriter{tw: tar.NewWriter(w), seen: map[string]bool{}}
}

func (t *tarWriter) file(name string, body []byte) error {
	if t.seen[name] {
		return nil
	}
	t.seen[name] = true
	if dir, _, ok := cutLast(name, "/"); ok && !t.seen[dir+"/"] {
		if err := t.dir(dir); err != nil {
			return err
		}
	}
	if err := t.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: Epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := t.tw.Write(body)
	return err
}

func (t *tarWriter) dir(name string) error {
	if parent, _, ok := cutLast(name, "/"); ok && !t.seen[parent+"/"] {
		if err := t.dir(parent); err != nil {
			return err
		}
	}
	t.seen[name+"/"] = true
	return t.tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o755, ModTime: Epoch, Typeflag: tar.TypeDir})
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

func hexOf(d string) string { return strings.TrimPrefix(d, "sha256:") }

// WriteDockerArchive writes imgs as one `docker save`-style archive:
// manifest.json, one config per image and uncompressed layers, each layer
// once even when images share it.
func WriteDockerArchive(w io.Writer, imgs ...Built) error {
	t := newTarWriter(w)
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for _, img := range imgs {
		e := entry{Config: hexOf(img.ConfigDigest) + ".json", RepoTags: img.Names}
		if err := t.file(e.Config, img.Config); err != nil {
			return err
		}
		for i, l := range img.Layers {
			p := hexOf(img.DiffIDs[i]) + "/layer.tar"
			if err := t.file(p, l); err != nil {
				return err
			}
			e.Layers = append(e.Layers, p)
		}
		manifest = append(manifest, e)
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := t.file("manifest.json", b); err != nil {
		return err
	}
	return t.tw.Close()
}

// OCIOptions tune WriteOCILayout.
type OCIOptions struct {
	// Gzip compresses the layers (media type ...tar+gzip).
	Gzip bool
}

// WriteOCILayout writes imgs as an OCI image layout tar. Each name gets an
// index entry annotated with the full name (io.containerd.image.name) and
// its tag (org.opencontainers.image.ref.name), as containerd exports do.
func WriteOCILayout(w io.Writer, opts OCIOptions, imgs ...Built) error {
	t := newTarWriter(w)
	if err := t.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var index []desc
	for _, img := range imgs {
		if err := t.file("blobs/sha256/"+hexOf(img.ConfigDigest), img.Config); err != nil {
			return err
		}
		var layers []desc
		for _, l := range img.Layers {
			mt := "application/vnd.oci.image.layer.v1.tar"
			blob := l
			if opts.Gzip {
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
				if _, err := zw.Write(l); err != nil {
					return err
				}
				if err := zw.Close(); err != nil {
					return err
				}
				mt, blob = mt+"+gzip", buf.Bytes()
			}
			d := Digest(blob)
			if err := t.file("blobs/sha256/"+hexOf(d), blob); err != nil {
				return err
			}
			layers = append(layers, desc{MediaType: mt, Digest: d, Size: int64(len(blob))})
		}
		manifest, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: img.ConfigDigest, Size: int64(len(img.Config))},
			"layers":        nonNilDesc(layers),
		})
		if err != nil {
			return err
		}
		md := Digest(manifest)
		if err := t.file("blobs/sha256/"+hexOf(md), manifest); err != nil {
			return err
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			d := desc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: md, Size: int64(len(manifest))}
			if n != "" {
				_, tag, _ := cutLast(n, ":")
				d.Annotations = map[string]string{"io.containerd.image.name": n, "org.opencontainers.image.ref.name": tag}
			}
			index = append(index, d)
		}
	}
	b, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
	if err != nil {
		return err
	}
	if err := t.file("index.json", b); err != nil {
		return err
	}
	return t.tw.Close()
}

func nonNilDesc[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// FileName turns an image name into a file name: "registry.k8s.io/nginx-slim:0.8"
// becomes "registry.k8s.io_nginx-slim_0.8".
func FileName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref)
}
