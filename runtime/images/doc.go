// Package images is the node's image store: image records (names, config,
// layer chain) kept as small JSON files, config and manifest blobs in a
// content-addressed store, and layers unpacked once into shared snapshots.
//
// Layers are verified against the diff IDs of the image config while they
// are unpacked, and the config against the image ID (its digest), so a
// stored image is verified from its ID down to every file. Layer tars are
// not kept after unpacking (an edge box should not hold every layer twice);
// the unpacked snapshot is the layer's stored form.
//
// Pulled images (Ingest) first land as compressed layer blobs in the
// content store, each verified against its digest and visible only when
// complete; they are unpacked under the store's lock and then deleted. A
// pull that fails midway keeps the finished blobs so that a retry fetches
// only what is missing; a full disk or a corrupt layer drops them.
package images
