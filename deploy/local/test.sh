#!/usr/bin/env bash
# Runs every test: Go tests of the server, the SDK and each plugin module, and the Python tests
# of the job side, against a throwaway Postgres and Redis started here and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir="$PWD/.estela-test"
deploy/local/services.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
cleanup() {
	deploy/local/services.sh stop "$dir" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
ESTELA_PG_FSYNC=off deploy/local/services.sh start "$dir"
set -a
# shellcheck disable=SC1091
. "$dir/services.env"
set +a
ESTELA_PYTHON=$(deploy/local/python.sh)
export ESTELA_PYTHON ESTELA_TEST_REQUIRE_SERVICES=1 ESTELA_TEST_PLUGIN_DIR="$PWD/bin/plugins"

# The SDK's staleness test regenerates the protobuf code, so it needs protoc and the pinned
# generators; it is skipped, with a message, only where protoc cannot be installed.
if ! command -v protoc >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "test: installing protobuf-compiler for the SDK's generated-code check" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null 2>&1; } || true
fi
if command -v protoc >/dev/null && make -s -C sdk tools; then
	export ESTELA_REQUIRE_PROTOC=1
else
	echo "test: protoc is missing (apt-get install protobuf-compiler); the generated-code check is skipped" >&2
fi

status=0
for module in . sdk $(dirname plugins/*/*/go.mod); do
	echo "== go test: $module"
	(cd "$module" && go test -count=1 -timeout 12m ./...) || status=1
done
echo "== python tests: sdk/scrapy"
"$ESTELA_PYTHON" -m unittest discover -s sdk/scrapy/tests -t sdk/scrapy || status=1
exit $status
