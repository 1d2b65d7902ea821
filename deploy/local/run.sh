#!/usr/bin/env bash
# Runs the platform on this machine: starts Postgres and Redis under ESTELA_DATA_DIR unless
# DATABASE_URL and REDIS_URL are set, then estela-server all with the local plugins.
set -euo pipefail
cd "$(dirname "$0")/../.."

export ESTELA_DATA_DIR="${ESTELA_DATA_DIR:-$PWD/.estela}"
mkdir -p "$ESTELA_DATA_DIR"
ESTELA_DATA_DIR=$(cd "$ESTELA_DATA_DIR" && pwd)
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
	deploy/local/services.sh start "$ESTELA_DATA_DIR/services"
	set -a
	# shellcheck disable=SC1091
	. "$ESTELA_DATA_DIR/services/services.env"
	set +a
	echo "run: Postgres and Redis run from $ESTELA_DATA_DIR/services; stop them with deploy/local/services.sh stop $ESTELA_DATA_DIR/services"
fi
ESTELA_PYTHON=$(deploy/local/python.sh)
export ESTELA_PYTHON
exec bin/estela-server -config "${ESTELA_CONFIG:-configs/estela.hcl}" all
