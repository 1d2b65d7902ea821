#!/usr/bin/env bash
# Prints the path of a Python interpreter that has Scrapy, redis and requests, for the local
# engine's job side. It tries ESTELA_PYTHON, the system /usr/bin/python3 and the python3 on PATH;
# when none fits and it runs as root on Debian, it installs python3-scrapy, python3-redis and
# python3-requests for the system Python.
set -euo pipefail

fits() { [ -n "$1" ] && command -v "$1" >/dev/null && "$1" -c 'import scrapy, redis, requests' >/dev/null 2>&1; }

for candidate in "${ESTELA_PYTHON:-}" /usr/bin/python3 "$(command -v python3 || true)"; do
	if fits "$candidate"; then
		command -v "$candidate"
		exit 0
	fi
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
	echo "python: installing python3-scrapy, python3-redis and python3-requests for /usr/bin/python3" >&2
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-scrapy python3-redis python3-requests >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-scrapy python3-redis python3-requests >/dev/null; }; } ||
		{ echo "python: installing the Debian packages failed; run apt-get install -y python3-scrapy python3-redis python3-requests" >&2; exit 1; }
	if fits /usr/bin/python3; then
		echo /usr/bin/python3
		exit 0
	fi
fi
echo "python: no Python with Scrapy found; install Debian's python3-scrapy python3-redis python3-requests, or set ESTELA_PYTHON to an interpreter that has them" >&2
exit 1
