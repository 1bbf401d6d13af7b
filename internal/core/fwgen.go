package core

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/berthnet/berth/internal/firewall"
)

// The firewall check of heal lists and decodes berth's whole table, which
// grows with the containers. A driver that numbers the ruleset's changes
// (firewall.Versioned) lets it skip that: the state database keeps the
// generation berth's last call left (bucket firewall, key generation),
// recorded only when berth's own commits alone made it from a ruleset
// that was checked (or itself unchanged since) and the call succeeded.
// When the generation is still that one, nobody has touched the ruleset
// since, and the rules are as that call left them. Anything else (another
// writer, `nft flush ruleset`, a firewalld reload, a call that failed, a
// flush between berth's commit and its reading of the generation) leaves
// the generation elsewhere, and the next call checks in full. The record
// is per state directory, since the check covers that directory's
// containers only, and the state lock serialises its readers and writers.

var (
	bucketFirewall = []byte("firewall")
	keyGeneration  = []byte("generation")
)

// fwTrack is what one call knows of the firewall's generation.
type fwTrack struct {
	marked bool                // the driver follows its changes from heal on
	good   bool                // the rules were intact (or restored) there
	known  firewall.Generation // the record when the call started
	have   bool                // there was one
}

// unchanged reports whether the ruleset is at the recorded generation,
// with nothing changed since: the full check may be skipped.
func unchanged(known firewall.Generation, have bool, now firewall.Generation) bool {
	return have && now.NetNS != 0 && known == now
}

// toRecord returns the generation to record at the end of a call that
// succeeded: the one the driver's own changes led to, when the call
// started from intact rules. ok is false when nothing is to be written
// (not known good, or already recorded).
func toRecord(t fwTrack, followed firewall.Generation, own bool) (firewall.Generation, bool) {
	if !t.marked || !t.good || !own || followed.NetNS == 0 {
		return firewall.Generation{}, false
	}
	if t.have && t.known == followed {
		return followed, false
	}
	return followed, true
}

func encodeGeneration(g firewall.Generation) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, g.NetNS)
	binary.BigEndian.PutUint32(b[8:], g.ID)
	return b
}

// decodeGeneration reads a record; ok is false for one of the wrong size.
func decodeGeneration(b []byte) (firewall.Generation, bool) {
	if len(b) != 12 {
		return firewall.Generation{}, false
	}
	return firewall.Generation{NetNS: binary.BigEndian.Uint64(b), ID: binary.BigEndian.Uint32(b[8:])}, true
}

// knownGeneration reads the recorded generation.
func (s *session) knownGeneration() (g firewall.Generation, ok bool) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketFirewall); b != nil {
			g, ok = decodeGeneration(b.Get(keyGeneration))
		}
		return nil
	})
	return g, ok
}

// recordGeneration records g as the generation berth's last call left.
func (s *session) recordGeneration(g firewall.Generation) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFirewall)
		if err != nil {
			return err
		}
		return b.Put(keyGeneration, encodeGeneration(g))
	})
}

// dropGeneration removes the record when no container is left, so that
// nothing of berth's stays (the next call's check then has nothing to
// look at anyway). It reports whether there was none left.
func (s *session) dropGeneration() (bool, error) {
	var gone, have bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContainers)
		gone = c == nil || empty(c)
		have = tx.Bucket(bucketFirewall) != nil
		return nil
	})
	if !gone || !have {
		return gone, nil
	}
	return true, s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketFirewall) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketFirewall)
	})
}

// empty reports whether bucket b holds no key.
func empty(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k == nil
}

// markFirewall starts following the driver's changes and reports whether
// the ruleset is still at the generation berth's last call left.
func (m *Manager) markFirewall(sess *session) bool {
	v, ok := m.cfg.Firewall.(firewall.Versioned)
	if !ok {
		return false
	}
	now, err := v.Mark()
	if err != nil {
		m.log.Debug("no ruleset generation; checking the firewall in full", "error", err)
		return false
	}
	known, have := sess.knownGeneration()
	sess.fw = fwTrack{marked: true, good: true, known: known, have: have}
	if unchanged(known, have, now) {
		m.log.Debug("firewall unchanged since berth's last change; check skipped", "generation", now.ID)
		return true
	}
	return false
}

// settleFirewall records, at the end of a call, the generation the
// driver's own changes led to when the call succeeded (see toRecord); with
// no container left it removes the record.
func (m *Manager) settleFirewall(sess *session, succeeded bool) {
	v, ok := m.cfg.Firewall.(firewall.Versioned)
	if !ok {
		return
	}
	g, own := v.Followed()
	g, write := toRecord(sess.fw, g, own)
	write = write && succeeded
	if !write && !sess.fw.have {
		return
	}
	if gone, err := sess.dropGeneration(); gone || err != nil {
		if err != nil {
			m.log.Debug("cannot remove the ruleset generation", "error", err)
		}
		return
	}
	if write {
		if err := sess.recordGeneration(g); err != nil {
			m.log.Debug("cannot record the ruleset generation", "error", err)
		}
	}
}
