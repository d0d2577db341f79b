#!/usr/bin/env bash
# The whole keyraft test suite, as README and CI run it:
#   bash scripts/test.sh
# It installs what the tests need when it is missing (SoftHSM2 and OpenSC
# for the PKCS#11 seal, protoc for the plugin contracts), then vets and runs
# every package's tests with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool   >/dev/null 2>&1 || need+=(opensc)
command -v protoc        >/dev/null 2>&1 || need+=(protobuf-compiler)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing test dependencies: ${need[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> go vet"
go vet ./...

echo "==> go test -race"
go test -race -count=1 -timeout 20m ./...
