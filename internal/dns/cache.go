package dns

import (
	"net/netip"
	"sync"
)

// replyCache remembers, per snapshot, what the UDP path did with a query:
// the packed reply of a local answer (with ID 0), or nil for "forward".
// The key is the asker's address, the address it asked and the query's
// bytes after the ID, so the same question in the same scope with the same
// flags and EDNS options gets byte-identical handling. A reload makes a new
// snapshot and so an empty cache; answers carry TTL 0, so nothing here can
// be stale. Resolvers send the same bytes for every repeat of a question,
// so a busy container mostly hits the cache: no unpacking, no packing.
type replyCache struct {
	mu sync.RWMutex // guards m
	m  map[string][]byte
}

// maxCachedReplies bounds the cache (about 2 MB at most; past it queries
// are answered as before, just not remembered).
const maxCachedReplies = 8192

// cacheKey appends the key of a query to b.
func cacheKey(b []byte, src, local netip.Addr, query []byte) []byte {
	s, l := src.As16(), local.As16()
	b = append(b, s[:]...)
	b = append(b, l[:]...)
	return append(b, query[2:]...)
}

// get returns the cached handling of key; reply nil means forward.
func (c *replyCache) get(key []byte) (reply []byte, ok bool) {
	c.mu.RLock()
	reply, ok = c.m[string(key)]
	c.mu.RUnlock()
	return reply, ok
}

// put remembers the handling of key (reply nil: forward). reply is copied.
func (c *replyCache) put(key, reply []byte) {
	if reply != nil {
		reply = append([]byte(nil), reply...)
		reply[0], reply[1] = 0, 0
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string][]byte)
	}
	if len(c.m) < maxCachedReplies {
		c.m[string(key)] = reply
	}
	c.mu.Unlock()
}
