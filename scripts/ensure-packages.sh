#!/usr/bin/env bash
# Install the Debian packages the test suite runs as real servers, when they are missing.
# As root it installs them; otherwise it says what is missing (those tests skip locally, and
# fail under CI=true).
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have redis-server || missing+=(redis-server)
have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
have chromium || missing+=(chromium)
have node || missing+=(nodejs)
have npm || missing+=(npm)
have curl || missing+=(curl)  # the README's REST examples run as tests

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-packages: missing ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "ensure-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start their services; the tests run their own instances on free ports.
for svc in redis-server nginx postgresql; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done
