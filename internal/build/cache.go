package build

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// cacheKey identifies a step's result: the parent image, the instruction
// as written, the build arguments in scope and extra (the content hash of
// copied files, the image a COPY --from reads).
func cacheKey(parentID, instruction, args, extra string) string {
	h := sha256.New()
	for _, s := range []string{"berth-build-v1", parentID, instruction, args, extra} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cache maps step keys to the image IDs the steps made, in a bbolt file.
type cache struct {
	path string
}

var cacheBucket = []byte("steps")

// get returns the image recorded for key ("" when none).
func (c *cache) get(key string) string {
	if c == nil || c.path == "" {
		return ""
	}
	db, err := bolt.Open(c.path, 0o600, &bolt.Options{Timeout: time.Minute})
	if err != nil {
		return ""
	}
	defer db.Close()
	var id string
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(cacheBucket); b != nil {
			id = string(b.Get([]byte(key)))
		}
		return nil
	})
	return id
}

// put records the image a step made.
func (c *cache) put(key, id string) error {
	if c == nil || c.path == "" {
		return nil
	}
	db, err := bolt.Open(c.path, 0o600, &bolt.Options{Timeout: time.Minute})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(cacheBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(id))
	})
	return errors.Join(err, db.Close())
}
