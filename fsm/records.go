package fsm

// The record key space: every key the layers above write to or read from
// the replicated state, in one place. The keys are the on-disk and on-wire
// format of the state (every node of a cluster, every snapshot and every
// Raft log entry uses them), so a value here never changes; a new record
// gets a new constant. records_test.go pins the list.
//
// A constant ending in "/" is a prefix: the record's own part follows it
// as its Doc says.
const (
	// RecordSealConfig is the seal type and share parameters (JSON, clear).
	RecordSealConfig = "core/seal-config"
	// RecordRootKey is the root key wrapped by the Shamir seal; an auto
	// seal's is at RecordRootKey + "-" + its type (core/root-key-pkcs11),
	// so a cluster holds both during a seal migration.
	RecordRootKey = "core/root-key"
	// RecordBarrierRootKey is the root key under the barrier, for a rekey
	// of an auto-sealed cluster.
	RecordBarrierRootKey = "core/barrier-root-key"
	// RecordRecoveryKey is the recovery key of an auto seal (barrier).
	RecordRecoveryKey = "core/recovery-key"
	// RecordKeyring is the barrier keyring wrapped by the root key.
	RecordKeyring = "core/keyring"
	// RecordKeyringRewrap is the progress of re-encryption after a
	// keyring rotation (clear).
	RecordKeyringRewrap = "core/keyring-rewrap"
	// RecordClusterCACert and RecordClusterCAKey are the cluster CA that
	// signs node certificates (barrier).
	RecordClusterCACert = "core/cluster-ca-cert"
	RecordClusterCAKey  = "core/cluster-ca-key"
	// RecordGossipKey is the gossip encryption key (barrier).
	RecordGossipKey = "core/gossip-key"
	// RecordAuditHMACKey is the key audit events hash secrets with.
	RecordAuditHMACKey = "core/audit-hmac-key"
	// RecordAuditSigningKey is the Ed25519 seed that signs audit
	// checkpoints (barrier).
	RecordAuditSigningKey = "core/audit-signing-key"
	// RecordAuditPublicKey is the cluster's Ed25519 audit public key,
	// written at init in the clear (it is public); Apply reads it to
	// verify checkpoints.
	RecordAuditPublicKey = "core/audit-public-key"
	// RecordPurge is the record whose every new revision asks each node
	// to purge its disk of older copies of the state (a change that
	// removes key material writes it, see store.PurgeWrite). A refused
	// command stays in the Raft log with the values it carried, so Apply
	// moves RecordPurge to the index of a refused command that may carry
	// removed material: one that puts values and was prepared from a read
	// older than the newest purge request (see stalePurge). Its value is
	// kept as it was.
	RecordPurge = "core/purge"

	// RecordToken + hex sha256(token) is a token entry.
	RecordToken = "auth/token/"
	// RecordAccessor + accessor is the hash of the accessor's token.
	RecordAccessor = "auth/accessor/"
	// RecordTokenChildren + parent accessor + "/" + child accessor marks a
	// child token, so revoking the parent finds its children.
	RecordTokenChildren = "auth/children/"
	// RecordCertRole + name is a certificate auth role.
	RecordCertRole = "auth/cert/role/"

	// RecordPolicy + name is an ACL policy of the root namespace.
	RecordPolicy = "sys/policy/"
	// RecordNamespace + name is a namespace.
	RecordNamespace = "sys/namespace/"
	// RecordNamespaceData + ns + "/" holds what namespace ns owns; it is
	// deleted with the namespace.
	RecordNamespaceData = "sys/ns/"
	// RecordNamespacePolicy follows RecordNamespaceData + ns + "/": an
	// ACL policy of namespace ns is at sys/ns/<ns>/policy/<name>.
	RecordNamespacePolicy = "policy/"
	// RecordAuditDevice + name is an audit device configured through the
	// API.
	RecordAuditDevice = "sys/audit-device/"
	// RecordAuditCursorCluster + device is how far a cluster-wide audit
	// device has been delivered.
	RecordAuditCursorCluster = "sys/audit-cursor/cluster/"
	// RecordAuditCursorNode + node ID + "/" + device is how far a node's
	// own audit device has been delivered.
	RecordAuditCursorNode = "sys/audit-cursor/node/"
	// RecordGrant + id is a two-person grant, pending or active.
	RecordGrant = "sys/grant/"
	// RecordGrantActive + requester + "/" + key + "/" + operation indexes
	// the active grant that lets requester do operation on key.
	RecordGrantActive = "sys/grant-active/"
	// RecordBreakGlassConfig is the break-glass emergency policy.
	RecordBreakGlassConfig = "sys/break-glass/config"
	// RecordBreakGlassActive is the break-glass session in progress.
	RecordBreakGlassActive = "sys/break-glass/active"
	// RecordPluginCatalog + type + "/" + name is a plugin catalog entry
	// (a built-in plugin's holds only its reload generation).
	RecordPluginCatalog = "sys/plugins/catalog/"

	// RecordTransitKey + name is a transit key: policy and versions. A
	// namespace's keys are named with cluster.NamespaceKeyPrefix.
	RecordTransitKey = "transit/key/"
	// RecordTransitUsage + name is a transit key's committed usage counts.
	RecordTransitUsage = "transit/usage/"
	// RecordTransitBackendDestroy + backend + "/" + handle is a crypto
	// backend key still to be destroyed on its backend.
	RecordTransitBackendDestroy = "transit/backend-destroy/"
	// RecordTransitWrappingKey is the cluster's RSA-4096 wrapping key for
	// bring-your-own-key imports.
	RecordTransitWrappingKey = "transit/wrapping-key"
	// RecordTransitConfigKeys is the engine's key settings (Vault's
	// transit/config/keys: disable_upsert).
	RecordTransitConfigKeys = "transit/config/keys"
)

// Record describes one entry of the key space.
type Record struct {
	Key string
	// Doc says what the record holds and, for a prefix, what follows it.
	Doc string
}

// Records is the whole key space the layers above use, in the order
// fsm/doc.go lists it. Keys starting with 0x00 are the state machine's
// own and are not listed.
var Records = []Record{
	{RecordSealConfig, "seal type and share parameters (JSON, clear)"},
	{RecordRootKey, "root key wrapped by the Shamir seal"},
	{RecordRootKey + "-<seal type>", "root key wrapped by an auto seal (core/root-key-pkcs11)"},
	{RecordBarrierRootKey, "root key under the barrier (rekey of an auto seal)"},
	{RecordRecoveryKey, "recovery key (auto-unseal), barrier-encrypted"},
	{RecordKeyring, "barrier keyring wrapped by the root key"},
	{RecordKeyringRewrap, "progress of re-encryption after a rotation (clear)"},
	{RecordClusterCACert, "cluster CA certificate, barrier-encrypted"},
	{RecordClusterCAKey, "cluster CA private key, barrier-encrypted"},
	{RecordGossipKey, "gossip encryption key, barrier-encrypted"},
	{RecordAuditHMACKey, "audit HMAC key, barrier-encrypted"},
	{RecordAuditSigningKey, "audit checkpoint signing key, barrier-encrypted"},
	{RecordAuditPublicKey, "its public key (clear)"},
	{RecordPurge, "each new revision: every node purges its disk"},
	{RecordToken + "<sha256>", "token entries, by the hash of the token"},
	{RecordAccessor + "<accessor>", "token hash of an accessor"},
	{RecordTokenChildren + "<parent>/<child>", "child tokens, by accessor"},
	{RecordCertRole + "<name>", "certificate auth roles"},
	{RecordPolicy + "<name>", "ACL policies of the root namespace"},
	{RecordNamespace + "<name>", "namespaces"},
	{RecordNamespaceData + "<ns>/" + RecordNamespacePolicy + "<name>", "ACL policies of namespace ns"},
	{RecordAuditDevice + "<name>", "audit devices configured through the API"},
	{RecordAuditCursorCluster + "<device>", "delivery cursor of a cluster-wide audit device"},
	{RecordAuditCursorNode + "<node>/<device>", "delivery cursor of a node's audit device"},
	{RecordGrant + "<id>", "two-person grants"},
	{RecordGrantActive + "<requester>/<key>/<op>", "index of active grants"},
	{RecordBreakGlassConfig, "break-glass emergency policy"},
	{RecordBreakGlassActive, "break-glass session in progress"},
	{RecordPluginCatalog + "<type>/<name>", "plugin catalog entries"},
	{RecordTransitKey + "<name>", "transit key policy and versions"},
	{RecordTransitUsage + "<name>", "transit key usage counts"},
	{RecordTransitBackendDestroy + "<backend>/<handle>", "backend keys still to destroy"},
	{RecordTransitWrappingKey, "wrapping key for key imports"},
	{RecordTransitConfigKeys, "the engine's key settings (disable_upsert)"},
}
