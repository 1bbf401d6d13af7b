package boltfile

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

func put(t *testing.T, db *bolt.DB, k, v string) {
	t.Helper()
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			return err
		}
		return b.Put([]byte(k), []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, db *bolt.DB, k string) string {
	t.Helper()
	var v string
	err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("b")); b != nil {
			v = string(b.Get([]byte(k)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A writer holds the database: a second writer and a reader wait (with a
// timeout, in vain while it holds it), and get it once it is closed.
func TestOpenWaitsForTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	w, err := Open(path, 0o600, &bolt.Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	put(t, w, "k", "one")
	for _, ro := range []bool{false, true} {
		if db, err := Open(path, 0o600, &bolt.Options{Timeout: 20 * time.Millisecond, ReadOnly: ro}); !errors.Is(err, bolterr.ErrTimeout) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("read-only %v: open of a locked database: %v, want ErrTimeout", ro, err)
		}
	}
	got := make(chan string)
	go func() {
		r, err := Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Minute})
		if err != nil {
			t.Error(err)
			got <- ""
			return
		}
		defer r.Close()
		got <- get(t, r, "k")
	}()
	time.Sleep(10 * time.Millisecond) // usually waiting by now; either way the same
	put(t, w, "k", "two")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "two" {
		t.Fatalf("the reader read %q, want what the writer committed before closing", v)
	}
}

// Readers share the lock; a writer waits for both.
func TestReadersShare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	w, err := Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, w, "k", "v")
	w.Close()
	var rs []*bolt.DB
	for range 2 {
		r, err := Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if _, err := Open(path, 0o600, &bolt.Options{Timeout: 20 * time.Millisecond}); !errors.Is(err, bolterr.ErrTimeout) {
		t.Fatalf("writer while two readers hold the file: %v, want ErrTimeout", err)
	}
	for _, r := range rs {
		if get(t, r, "k") != "v" {
			t.Fatal("reader lost the value")
		}
		r.Close()
	}
	w, err = Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
}
