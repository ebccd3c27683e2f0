#!/usr/bin/env bash
# Starts a throw-away CrowdSec LAPI (crowdsec -no-cs: the API only, no agent, no Central API) with
# its own config, SQLite database and port under DIR, waits for it, and prints its pid. Nothing in
# /etc/crowdsec is touched. Stop it with lapi-down.sh DIR.
#   lapi-up.sh DIR PORT [LISTEN_ADDRESS]    (default 127.0.0.1)
# Env: LAPI_FLUSH_MAX_ITEMS to force the alert flush (left out otherwise: it deletes active bans).
set -euo pipefail
dir=$1 port=$2 listen=${3:-127.0.0.1}
mkdir -p "$dir/data" "$dir/log" "$dir/notifications"
echo 'simulation: off' > "$dir/simulation.yaml"
printf 'share_manual_decisions: false\nshare_custom: false\nshare_tainted: false\nshare_context: false\n' > "$dir/console.yaml"
cat > "$dir/config.yaml" <<YAML
common:
  daemonize: false
  log_media: file
  log_level: info
  log_dir: $dir/log/
  working_dir: .
config_paths:
  config_dir: $dir/
  data_dir: $dir/data/
  simulation_path: $dir/simulation.yaml
  hub_dir: /var/lib/crowdsec/hub/
  index_path: /var/lib/crowdsec/hub/.index.json
  notification_dir: $dir/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
db_config:
  log_level: info
  type: sqlite
  db_path: $dir/data/crowdsec.db
  use_wal: true
  flush:
${LAPI_FLUSH_MAX_ITEMS:+    max_items: $LAPI_FLUSH_MAX_ITEMS
}    max_age: 7d
api:
  client:
    credentials_path: $dir/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: $listen:$port
    profiles_path: /etc/crowdsec/profiles.yaml
    console_path: $dir/console.yaml
    trusted_ips: [127.0.0.1, "::1"]
prometheus:
  enabled: false
YAML
crowdsec -c "$dir/config.yaml" -no-cs >"$dir/log/stdout.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://$listen:$port/health" 2>/dev/null; then
    # cscli's own machine, for `cscli decisions add/delete/list` against this LAPI.
    cscli -c "$dir/config.yaml" --error machines add cscli-local --auto -f "$dir/local_api_credentials.yaml" --force
    cat "$dir/pid"
    exit 0
  fi
  if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then echo "crowdsec exited: $(tail -5 "$dir/log/stdout.log" "$dir/log/crowdsec_api.log" 2>/dev/null)" >&2; exit 1; fi
  sleep 0.1
done
echo "the LAPI did not answer on $listen:$port within 10 s" >&2
kill "$(cat "$dir/pid")" 2>/dev/null || true
exit 1
