# invalid: keyraft.hcl: a storage "raft" block is required
