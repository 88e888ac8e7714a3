#!/usr/bin/env bash
# One upload through the compose stack (deploy/compose/compose.yaml), run by
# `scripts/containers.sh test` on a stack it has just started: every container's health check
# passes; an API key made with dither-keys in the gateway's container uploads a PNG with an e-mail
# address; the automatic dither is FINISHED (Kafka, PostgreSQL, S3 and a dithering worker did
# their part) and its file downloads through the gateway; the SMTP server received the mail over
# STARTTLS with AUTH; Prometheus scraped every process and saw the upload and the dither.
#   tests/containers/compose_test.sh PROJECT GATEWAY_PORT
set -euo pipefail
project=$1
port=$2
TEST_NAME=compose
# shellcheck source=tests/containers/lib.sh
source "$(dirname "$0")/lib.sh"

container() { echo "${project}_$1_1"; }
base=http://127.0.0.1:$port

for service in postgres kafka s3 smtp upload-service dithering-1 dithering-2 \
  notification-service api-gateway prometheus; do
  health_check "$(container "$service")" 120
done
say "every container's health check passes"
# The services run as the image's user, not root.
[[ $(podman exec "$(container upload-service)" id -u) == 10001 ]] || fail "upload-service is not uid 10001"

key=$(podman exec "$(container api-gateway)" dither-keys create --name compose-test 2>/dev/null)
[[ $key == dk_* ]] || fail "dither-keys printed no key"
email=compose-test@example.org
UPLOAD_WAIT_SECONDS=120 upload_and_dither "$base" "$key" "$email" >"$WORK/uuid"

# The mail: the notification service sends it over SMTP, STARTTLS checked against the stack's
# certificate, AUTH with the stack's password.
deadline=$((SECONDS + 60))
until podman exec "$(container smtp)" cat /var/lib/smtp/received.jsonl 2>/dev/null >"$WORK/mail.jsonl" &&
  grep -q "$email" "$WORK/mail.jsonl"; do
  ((SECONDS < deadline)) || fail "no mail to $email reached the SMTP server in 60 s"
  sleep 1
done
python3 - "$WORK/mail.jsonl" "$email" <<'PY' || fail "the mail did not arrive as expected: $(cat "$WORK/mail.jsonl")"
import json, sys
mails = [json.loads(line) for line in open(sys.argv[1])]
mine = [m for m in mails if sys.argv[2] in m["rcpt_tos"]]
assert len(mine) == 1 and mine[0]["tls"] and mine[0]["auth"] == "dither", mine
PY
say "the mail to $email arrived over STARTTLS with AUTH"

# Prometheus: every process is scraped; the upload and the dither are counted. Asked from the
# gateway's container (Prometheus is not published).
prom_query() {
  podman exec "$(container api-gateway)" curl -sS --max-time 5 -G \
    --data-urlencode "query=$1" http://prometheus:9090/api/v1/query
}
# prom_value QUERY: the first sample's value of an instant query (empty when none).
prom_value() {
  prom_query "$1" | python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")'
}
deadline=$((SECONDS + 60))
while true; do
  targets=$(prom_value 'count(up{job=~"api-gateway|upload-service|dithering-service|notification-service"} == 1)' || true)
  uploads=$(prom_value 'sum(dither_uploads_total{outcome="stored"})' || true)
  dithers=$(prom_value 'sum(dither_dithers_total{outcome="finished"})' || true)
  [[ $targets == 5 && $uploads == 1 && $dithers == 1 ]] && break
  ((SECONDS < deadline)) ||
    fail "Prometheus: $targets of 5 targets up, $uploads uploads stored, $dithers dithers finished (want 5, 1, 1)"
  sleep 2
done
say "Prometheus scrapes all 5 processes and counted 1 upload and 1 dither"
rules=$(podman exec "$(container api-gateway)" curl -sS --max-time 5 http://prometheus:9090/api/v1/rules |
  python3 -c 'import json, sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
((rules > 0)) || fail "Prometheus loaded no alerting or recording rules"
say "passed ($rules rules loaded)"
