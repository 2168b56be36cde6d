#!/bin/sh
# One-shot set-up of the compose stack (the `init` service of compose.yaml), run once
# PostgreSQL is healthy. It does what docs/deploy.md tells an admin to do by hand:
#   1. `certgate init --database-url ...` makes node-a's data directory (CA, keys,
#      config) and creates the schema on PostgreSQL;
#   2. node-a's config gets the admin listener on the compose network (HAProxy checks
#      /readyz there) and the PROXY protocol from the HAProxy container only;
#   3. node-b is a copy of node-a's directory with its own `node:` name.
# On later runs it changes nothing. certgate init refuses a database that already
# holds an install, so a lost volume never gets a second CA over the old data.
set -eu

ROOT="${CERTGATE_ROOT:-/srv/certgate}"
: "${CERTGATE_HOSTNAME:?set CERTGATE_HOSTNAME, the gateway public name}"
: "${CERTGATE_CA_PASSPHRASE:?set CERTGATE_CA_PASSPHRASE (12+ characters): it encrypts the CA keys}"
HAPROXY_ADDRESS="${HAPROXY_ADDRESS:-172.30.0.10}"
if [ -z "${CERTGATE_DATABASE_URL:-}" ]; then
    : "${CERTGATE_DB_PASSWORD:?set CERTGATE_DB_PASSWORD}"
    # The password is hex (see docs/deploy.md), so it needs no escaping in the URL.
    CERTGATE_DATABASE_URL="postgresql+asyncpg://certgate:${CERTGATE_DB_PASSWORD}@db:5432/certgate"
fi

if [ -f "$ROOT/node-a/certgate.yaml" ]; then
    echo "certgate: $ROOT/node-a is set up already; nothing to do"
    exit 0
fi

certgate init --data-dir "$ROOT/node-a" --hostname "$CERTGATE_HOSTNAME" --node node-a \
    --database-url "$CERTGATE_DATABASE_URL"

config="$ROOT/node-a/certgate.yaml"
sed -i 's|^admin_listen: .*|admin_listen: "0.0.0.0:9443"   # /readyz for HAProxy: compose network only|' "$config"
cat >> "$config" <<YAML

# Behind HAProxy (deploy/compose/haproxy.cfg): only it may send a PROXY v2 header,
# and it must; anyone else connecting directly is served as themselves.
proxy_protocol:
  allowed_sources: [$HAPROXY_ADDRESS]
  listeners: [public, pki]
YAML
certgate --config "$config" policy check

cp -a "$ROOT/node-a" "$ROOT/node-b"
sed -i 's|^node: "node-a"|node: "node-b"|' "$ROOT/node-b/certgate.yaml"
echo "certgate: node-a and node-b are ready in $ROOT"
