package linearize

import (
	"context"
	"errors"
	"fmt"

	"kedge.dev/kedge/raftstore"
)

// StoreClient is a Client over a raftstore.Store in this process: keys are
// stored under Prefix.
type StoreClient struct {
	Store  raftstore.Store
	Prefix string
}

var _ Client = StoreClient{}

// Read implements Client.
func (c StoreClient) Read(ctx context.Context, key string) (string, error) {
	kv, err := c.Store.Get(ctx, c.Prefix+key)
	if errors.Is(err, raftstore.ErrNotFound) {
		return "", nil
	}
	return string(kv.Value), err
}

// Write implements Client.
func (c StoreClient) Write(ctx context.Context, key, value string) error {
	_, err := c.Store.Update(ctx, c.Prefix+key, []byte(value), 0)
	if errors.Is(err, raftstore.ErrNotFound) {
		_, err = c.Store.Create(ctx, c.Prefix+key, []byte(value))
		if errors.Is(err, raftstore.ErrKeyExists) {
			// Created meanwhile: this write lost nothing, try again as
			// an update.
			_, err = c.Store.Update(ctx, c.Prefix+key, []byte(value), 0)
		}
	}
	return err
}

// CAS implements Client.
func (c StoreClient) CAS(ctx context.Context, key, value string) (string, bool, error) {
	kv, err := c.Store.Get(ctx, c.Prefix+key)
	if errors.Is(err, raftstore.ErrNotFound) {
		_, err := c.Store.Create(ctx, c.Prefix+key, []byte(value))
		if errors.Is(err, raftstore.ErrKeyExists) {
			return "", false, nil
		}
		return "", err == nil, err
	}
	if err != nil {
		return "", false, fmt.Errorf("%w: %w", ErrNotApplied, err)
	}
	_, err = c.Store.Update(ctx, c.Prefix+key, []byte(value), kv.ModRevision)
	if errors.Is(err, raftstore.ErrConflict) {
		return string(kv.Value), false, nil
	}
	return string(kv.Value), err == nil, err
}
