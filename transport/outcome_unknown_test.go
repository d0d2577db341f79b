package transport

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
)

// A change whose leader was lost while committing it may have been
// applied: the client gets a 503 that says so and how to check, never a
// 500 and never the plain "no leader, try again".
func TestOutcomeUnknownIsA503ThatSaysItMayHaveApplied(t *testing.T) {
	for _, err := range []error{
		cluster.ErrOutcomeUnknown,
		fmt.Errorf("%w (forwarded to 127.0.0.1:1, then: connection lost)", cluster.ErrOutcomeUnknown),
		// The leader's own commit, cut by a loss of leadership.
		fmt.Errorf("%w (%w: leadership lost)", cluster.ErrOutcomeUnknown, cluster.ErrNotLeader),
	} {
		r := (&API{log: hclog.NewNullLogger()}).errorReply(err)
		msg := r.errorText()
		if r.status != http.StatusServiceUnavailable || !strings.Contains(msg, "may or may not have been applied") || !strings.Contains(msg, "read the affected key") {
			t.Errorf("errorReply(%v) = %d %q, want 503 saying the change may have been applied and how to check", err, r.status, msg)
		}
	}
}
