package transport

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
)

// inflight counts the batch items each token has in flight, so that one
// caller cannot take the node from the others with many large batches at
// once (a request without batch_input counts one item).
type inflight struct {
	mu sync.Mutex
	m  map[string]int
}

// acquire takes n items of key's budget of limit; false when that would
// exceed it. A request larger than the whole budget may run alone.
func (l *inflight) acquire(key string, n, limit int) bool {
	n = min(n, limit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[key]+n > limit {
		return false
	}
	if l.m == nil {
		l.m = map[string]int{}
	}
	l.m[key] += n
	return true
}

func (l *inflight) release(key string, n, limit int) {
	n = min(n, limit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[key] -= n; l.m[key] <= 0 {
		delete(l.m, key) // the map holds only tokens with requests in flight
	}
}

// batchWeight is how many items a request asks the engine to work on.
func (req *request) batchWeight() int {
	f, r := req.parsed()
	if r != nil {
		return 1
	}
	if items, ok, err := f.Items("batch_input"); err == nil && ok {
		return len(items)
	}
	return 1
}

// withInflight runs serve within the token's budget of batch items in
// flight (Config.MaxTokenBatchItemsInFlight), or answers 429.
func (a *API) withInflight(req *request, accessor string, serve func() reply) reply {
	limit := a.cfg.MaxTokenBatchItemsInFlight
	n := req.batchWeight()
	if !a.inflight.acquire(accessor, n, limit) {
		r := errReply(http.StatusTooManyRequests, fmt.Sprintf(
			"too many batch items in flight for this token: the limit is %d (max_token_batch_items_in_flight); retry when earlier requests have finished", limit))
		r.retryAfter = strconv.Itoa(1)
		return r
	}
	defer a.inflight.release(accessor, n, limit)
	return serve()
}

// bodyBudgetKey prefixes the inflight key of a token's request bytes (its
// batch items are counted under the accessor alone).
const bodyBudgetKey = "bytes:"

// maxTokenBodyBytes is how many request body bytes the requests of one
// token may hold in memory at once: four bodies of the largest size.
func (a *API) maxTokenBodyBytes() int {
	return int(min(4*a.cfg.MaxRequestSize, int64(math.MaxInt32)))
}
