package fsm

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// formatChange is the reason every failure here gives: the keys are the
// replicated state's format, shared by every node, snapshot and log entry.
const formatChange = "the record key space is the on-disk and on-wire format of the replicated state: " +
	"changing a key orphans every record a running cluster, snapshot or Raft log holds under the old one; " +
	"add a new record (and a migration) instead of changing a value"

// TestRecordKeysFrozen pins every record key and prefix.
func TestRecordKeysFrozen(t *testing.T) {
	pinned := map[string]string{
		"RecordSealConfig":            "core/seal-config",
		"RecordRootKey":               "core/root-key",
		"RecordBarrierRootKey":        "core/barrier-root-key",
		"RecordRecoveryKey":           "core/recovery-key",
		"RecordKeyring":               "core/keyring",
		"RecordKeyringRewrap":         "core/keyring-rewrap",
		"RecordClusterCACert":         "core/cluster-ca-cert",
		"RecordClusterCAKey":          "core/cluster-ca-key",
		"RecordGossipKey":             "core/gossip-key",
		"RecordAuditHMACKey":          "core/audit-hmac-key",
		"RecordAuditSigningKey":       "core/audit-signing-key",
		"RecordAuditPublicKey":        "core/audit-public-key",
		"RecordPurge":                 "core/purge",
		"RecordToken":                 "auth/token/",
		"RecordAccessor":              "auth/accessor/",
		"RecordTokenChildren":         "auth/children/",
		"RecordCertRole":              "auth/cert/role/",
		"RecordPolicy":                "sys/policy/",
		"RecordNamespace":             "sys/namespace/",
		"RecordNamespaceData":         "sys/ns/",
		"RecordNamespacePolicy":       "policy/",
		"RecordAuditDevice":           "sys/audit-device/",
		"RecordAuditCursorCluster":    "sys/audit-cursor/cluster/",
		"RecordAuditCursorNode":       "sys/audit-cursor/node/",
		"RecordGrant":                 "sys/grant/",
		"RecordGrantActive":           "sys/grant-active/",
		"RecordBreakGlassConfig":      "sys/break-glass/config",
		"RecordBreakGlassActive":      "sys/break-glass/active",
		"RecordPluginCatalog":         "sys/plugins/catalog/",
		"RecordTransitKey":            "transit/key/",
		"RecordTransitUsage":          "transit/usage/",
		"RecordTransitBackendDestroy": "transit/backend-destroy/",
		"RecordTransitWrappingKey":    "transit/wrapping-key",
		"RecordTransitConfigKeys":     "transit/config/keys",
		// The state machine's own bookkeeping.
		"appliedKey":            "\x00applied",
		"auditHeadKey":          "\x00audit/head",
		"auditEventPrefix":      "\x00audit/e/",
		"auditCheckpointPrefix": "\x00audit/cp/",
		"auditBaseKey":          "\x00audit/base",
	}
	got := map[string]string{
		"RecordSealConfig":            RecordSealConfig,
		"RecordRootKey":               RecordRootKey,
		"RecordBarrierRootKey":        RecordBarrierRootKey,
		"RecordRecoveryKey":           RecordRecoveryKey,
		"RecordKeyring":               RecordKeyring,
		"RecordKeyringRewrap":         RecordKeyringRewrap,
		"RecordClusterCACert":         RecordClusterCACert,
		"RecordClusterCAKey":          RecordClusterCAKey,
		"RecordGossipKey":             RecordGossipKey,
		"RecordAuditHMACKey":          RecordAuditHMACKey,
		"RecordAuditSigningKey":       RecordAuditSigningKey,
		"RecordAuditPublicKey":        RecordAuditPublicKey,
		"RecordPurge":                 RecordPurge,
		"RecordToken":                 RecordToken,
		"RecordAccessor":              RecordAccessor,
		"RecordTokenChildren":         RecordTokenChildren,
		"RecordCertRole":              RecordCertRole,
		"RecordPolicy":                RecordPolicy,
		"RecordNamespace":             RecordNamespace,
		"RecordNamespaceData":         RecordNamespaceData,
		"RecordNamespacePolicy":       RecordNamespacePolicy,
		"RecordAuditDevice":           RecordAuditDevice,
		"RecordAuditCursorCluster":    RecordAuditCursorCluster,
		"RecordAuditCursorNode":       RecordAuditCursorNode,
		"RecordGrant":                 RecordGrant,
		"RecordGrantActive":           RecordGrantActive,
		"RecordBreakGlassConfig":      RecordBreakGlassConfig,
		"RecordBreakGlassActive":      RecordBreakGlassActive,
		"RecordPluginCatalog":         RecordPluginCatalog,
		"RecordTransitKey":            RecordTransitKey,
		"RecordTransitUsage":          RecordTransitUsage,
		"RecordTransitBackendDestroy": RecordTransitBackendDestroy,
		"RecordTransitWrappingKey":    RecordTransitWrappingKey,
		"RecordTransitConfigKeys":     RecordTransitConfigKeys,
		"appliedKey":                  string(appliedKey),
		"auditHeadKey":                string(auditHeadKey),
		"auditEventPrefix":            string(auditEventPrefix),
		"auditCheckpointPrefix":       string(auditCheckpointPrefix),
		"auditBaseKey":                string(auditBaseKey),
	}
	for name, want := range pinned {
		if got[name] != want {
			t.Errorf("%s = %q, pinned at %q: %s", name, got[name], want, formatChange)
		}
	}
	for name := range got {
		if _, ok := pinned[name]; !ok {
			t.Errorf("%s is not pinned: add it to this test (%s)", name, formatChange)
		}
	}
}

// TestRecordsList pins Records, the list fsm/doc.go shows: a record may
// be added at the end of its group, never renamed or dropped.
func TestRecordsList(t *testing.T) {
	want := []string{
		"core/seal-config", "core/root-key", "core/root-key-<seal type>", "core/barrier-root-key",
		"core/recovery-key", "core/keyring", "core/keyring-rewrap", "core/cluster-ca-cert",
		"core/cluster-ca-key", "core/gossip-key", "core/audit-hmac-key", "core/audit-signing-key",
		"core/audit-public-key", "core/purge",
		"auth/token/<sha256>", "auth/accessor/<accessor>", "auth/children/<parent>/<child>", "auth/cert/role/<name>",
		"sys/policy/<name>", "sys/namespace/<name>", "sys/ns/<ns>/policy/<name>", "sys/audit-device/<name>",
		"sys/audit-cursor/cluster/<device>", "sys/audit-cursor/node/<node>/<device>", "sys/grant/<id>",
		"sys/grant-active/<requester>/<key>/<op>", "sys/break-glass/config", "sys/break-glass/active",
		"sys/plugins/catalog/<type>/<name>",
		"transit/key/<name>", "transit/usage/<name>", "transit/backend-destroy/<backend>/<handle>",
		"transit/wrapping-key", "transit/config/keys",
	}
	var got []string
	for _, r := range Records {
		got = append(got, r.Key)
		if r.Doc == "" {
			t.Errorf("record %s has no Doc", r.Key)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Records changed:\n got %q\nwant %q\n%s", got, want, formatChange)
	}
}

// TestDocListsRecords keeps the list in doc.go true: it must be the one
// Records gives.
func TestDocListsRecords(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	width := 0
	for _, r := range Records {
		width = max(width, len(r.Key))
	}
	var b strings.Builder
	for _, r := range Records {
		fmt.Fprintf(&b, "//\t%-*s  %s\n", width, r.Key, r.Doc)
	}
	if !strings.Contains(string(src), b.String()) {
		t.Errorf("doc.go does not list the records of Records; replace its list with:\n%s", b.String())
	}
}
