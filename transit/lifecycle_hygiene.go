package transit

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/keyraft/keyraft/fsm"
)

// Hygiene findings: the common key-management mistakes, found by reading
// the keys (GET sys/report/hygiene, keyraft report hygiene). Other parts
// of the node (tokens, policies) add findings of the same shape.

// Finding severities, in increasing order.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// SeverityRank orders severities (info 1, warning 2, critical 3); an
// unknown one is 0.
func SeverityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// Finding is one hygiene problem of one object.
type Finding struct {
	Severity string `json:"severity"`
	// Check names the rule, e.g. "key-never-rotated".
	Check string `json:"check"`
	// Object names what the finding is about: "key:<name>",
	// "token:<accessor>", "policy:<name>".
	Object string `json:"object"`
	// Namespace is the object's namespace ("" for the root namespace).
	Namespace string `json:"namespace,omitempty"`
	Message   string `json:"message"`
	// Fix says what to do, as a command where there is one.
	Fix string `json:"fix"`
}

// Hygiene thresholds.
const (
	// MaxKeyAge is how long a key may go without rotation when it has no
	// auto_rotate_period: a year, a common cryptoperiod for symmetric
	// data-encryption keys (NIST SP 800-57 part 1 suggests up to 2 years
	// of originator use).
	MaxKeyAge = 365 * 24 * time.Hour
	// rotationGrace is how late an automatic rotation may be before it is
	// a finding (the leader checks every minute).
	rotationGrace = time.Hour
	// usageWarnShare is the share of a version's rotation threshold at
	// which its encryption count becomes a finding.
	usageWarnShare = 0.8
)

// Hygiene returns the findings about every key, most severe first.
func (e *Engine) Hygiene(ctx context.Context) ([]Finding, error) {
	names, err := e.store.List(fsm.RecordTransitKey)
	if err != nil {
		return nil, err
	}
	now := e.Now()
	var out []Finding
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l, err := e.get(name)
		if err != nil {
			return nil, err
		}
		if l == nil {
			continue
		}
		found, err := e.keyFindings(l.policy, now)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	SortFindings(out)
	return out, nil
}

// SortFindings orders findings most severe first, then by object and check.
func SortFindings(f []Finding) {
	sort.SliceStable(f, func(i, j int) bool {
		a, b := f[i], f[j]
		if SeverityRank(a.Severity) != SeverityRank(b.Severity) {
			return SeverityRank(a.Severity) > SeverityRank(b.Severity)
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Check < b.Check
	})
}

func (e *Engine) keyFindings(p *Policy, now time.Time) ([]Finding, error) {
	var out []Finding
	obj := "key:" + p.Name
	add := func(sev, check, fix, format string, args ...any) {
		out = append(out, Finding{Severity: sev, Check: check, Object: obj, Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	state := p.state(now)
	switch state {
	case StateDestroyed:
		return nil, nil // nothing left to get wrong
	case StatePendingDestruction:
		add(SeverityInfo, "key-pending-destruction", "keyraft keys cancel-destroy "+p.Name+" if this is a mistake",
			"key %q will be destroyed at %s", p.Name, p.Lifecycle.DestroyTime.UTC().Format(time.RFC3339))
		return out, nil
	case StateCompromised:
		add(SeverityCritical, "key-compromised", "re-encrypt the data under a new key (transit/rewrap cannot: create a new key, decrypt and encrypt), then keyraft keys destroy "+p.Name,
			"key %q is compromised and still decrypts", p.Name)
	}
	age := now.Sub(p.lastRotation())
	switch {
	case p.AutoRotatePeriod != 0 && age > p.AutoRotatePeriod+rotationGrace && state == StateActive:
		add(SeverityWarning, "key-rotation-overdue", "check the leader's log for auto-rotation errors, or keyraft keys rotate "+p.Name,
			"key %q was last rotated %s ago, past its auto_rotate_period of %s", p.Name, age.Round(time.Minute), p.AutoRotatePeriod)
	case p.AutoRotatePeriod == 0 && age > MaxKeyAge && p.LatestVersion == 1:
		add(SeverityWarning, "key-never-rotated", fmt.Sprintf("keyraft keys rotate %s, and keyraft keys config -auto-rotate-period=8760h %s", p.Name, p.Name),
			"key %q was never rotated in %d days and has no auto_rotate_period", p.Name, int(age.Hours()/24))
	case p.AutoRotatePeriod == 0 && age > MaxKeyAge:
		add(SeverityWarning, "key-rotation-overdue", fmt.Sprintf("keyraft keys rotate %s, and keyraft keys config -auto-rotate-period=8760h %s", p.Name, p.Name),
			"key %q was last rotated %d days ago and has no auto_rotate_period", p.Name, int(age.Hours()/24))
	}
	if p.DeletionAllowed && (state == StateActive || state == StatePreActive || state == StateDisabled) {
		add(SeverityWarning, "key-deletion-allowed", "keyraft keys config -deletion-allowed=false "+p.Name,
			"key %q has no deletion protection: deletion_allowed lets one call delete it, or schedule its destruction", p.Name)
	}
	if countsUsage(p) {
		u, _, err := e.readUsage(p.Name)
		if err != nil {
			return nil, err
		}
		threshold := p.Lifecycle.rotateShare() * SafeEncryptions
		for v := max(p.MinAvailableVersion, 1); v <= p.LatestVersion; v++ {
			n := u.Encryptions[v] + e.usage.pending(p.Name, v)
			switch {
			case n >= SafeEncryptions:
				add(SeverityCritical, "version-encryption-limit", "keyraft keys rotate "+p.Name+", then re-encrypt (transit/rewrap) what version "+fmt.Sprint(v)+" encrypted",
					"key %q version %d made %d encryptions, past the 2^32 limit of random 96-bit nonces", p.Name, v, n)
			case v == p.LatestVersion && float64(n) >= usageWarnShare*threshold:
				add(SeverityWarning, "version-near-encryption-limit", "keyraft keys rotate "+p.Name,
					"key %q version %d made %d encryptions, %.0f%% of the %d at which it is rotated", p.Name, v, n, 100*float64(n)/threshold, uint64(threshold))
			}
		}
	}
	return out, nil
}
