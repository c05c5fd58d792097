package flatstore

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Exactly once while the process lives (docs/delivery.md). A chunk whose records go
// to several files can fail on one file after others took their lines;
// the flush answers RETRY and the engine sends the same chunk again later.
// resends remembers, for each chunk answered RETRY, how many lines of each
// of its groups (the lines bound for one file) landed, so that the resend
// writes only the rest.
//
//   - A resend is recognised by the chunk's bytes (SHA-256) and its tag.
//     Chunks are hashed only when a remembered chunk has the same length,
//     so a flush pays nothing while no retry is pending.
//   - Two different chunks with identical bytes and tag render identical
//     lines: taking one for the other's resend writes the same bytes, so
//     every file still holds each line as often as it was sent.
//   - A rotation between the attempts changes nothing: the lines that
//     landed are in the rotated file, and the rest goes to the new one.
//   - When the engine gives up on a chunk its entry is never asked for
//     again: entries expire after resendTTL, and at most maxResends are
//     kept (the oldest go first).
//   - A chunk whose groups differ in number from the remembered ones, or a
//     group whose line count differs (neither can happen, as rendering is
//     deterministic), is written whole there: never less than was sent.
//   - Not covered: a restart between the attempts (the memory is in the
//     process). Fluent Bit's filesystem storage resends such a chunk whole.
type resends struct {
	mu      sync.Mutex
	byKey   map[resendKey]*list.Element
	order   *list.List  // *resendEntry, oldest first
	lengths map[int]int // chunk length → entries, to skip hashing
}

const (
	maxResends = 1024
	resendTTL  = time.Hour
)

type resendKey struct {
	sum [sha256.Size]byte
	tag string
	n   int
}

type resendEntry struct {
	key resendKey
	at  time.Time
	// lines[i] is how many lines group i holds, done[i] how many landed
	// (all of them for a group dropped as bad_path).
	lines, done []int
}

func newResends() *resends {
	return &resends{byKey: map[resendKey]*list.Element{}, order: list.New(), lengths: map[int]int{}}
}

// pending reports whether a chunk of n bytes may be a resend.
func (r *resends) pending(n int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lengths[n] > 0
}

func keyOf(data []byte, tag string) resendKey {
	return resendKey{sum: sha256.Sum256(data), tag: tag, n: len(data)}
}

// find returns the entry of a chunk answered RETRY before, or nil.
func (r *resends) find(k resendKey, now time.Time) *resendEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	if e, ok := r.byKey[k]; ok {
		return e.Value.(*resendEntry)
	}
	return nil
}

// remember records what landed of a chunk answered RETRY.
func (r *resends) remember(k resendKey, lines, done []int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byKey[k]; ok {
		r.removeLocked(e)
	}
	for r.order.Len() >= maxResends {
		r.removeLocked(r.order.Front())
	}
	ent := &resendEntry{key: k, at: now, lines: append([]int(nil), lines...), done: append([]int(nil), done...)}
	r.byKey[k] = r.order.PushBack(ent)
	r.lengths[k.n]++
}

// forget drops the entry of a chunk that was written whole.
func (r *resends) forget(k resendKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.byKey[k]; ok {
		r.removeLocked(e)
	}
}

// size is the number of entries kept.
func (r *resends) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

func (r *resends) expireLocked(now time.Time) {
	for e := r.order.Front(); e != nil && now.Sub(e.Value.(*resendEntry).at) > resendTTL; e = r.order.Front() {
		r.removeLocked(e)
	}
}

func (r *resends) removeLocked(e *list.Element) {
	ent := e.Value.(*resendEntry)
	r.order.Remove(e)
	delete(r.byKey, ent.key)
	if r.lengths[ent.key.n]--; r.lengths[ent.key.n] <= 0 {
		delete(r.lengths, ent.key.n)
	}
}

// skip returns how many lines of group i, which holds n lines, landed
// before; 0 without an entry or when the entry does not describe this
// chunk's groups.
func (ent *resendEntry) skip(i, groups, n int) int {
	if ent == nil || len(ent.lines) != groups || ent.lines[i] != n {
		return 0
	}
	return ent.done[i]
}
