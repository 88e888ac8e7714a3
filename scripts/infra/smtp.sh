#!/usr/bin/env bash
# An SMTP server for tests: aiosmtpd 1.4.6 (from PyPI, in a virtualenv) running
# scripts/infra/smtp_sink.py, which keeps every mail it receives.
#   scripts/infra/smtp.sh start|stop|status|env
# Listens on 127.0.0.1:$SMTP_PORT (default 2525) with STARTTLS, and with TLS from the first byte on
# SMTP_PORT+1; AUTH PLAIN/LOGIN as `dither` / `dither-mail` (also without TLS). The certificate is
# self-signed (made with openssl, for localhost and 127.0.0.1): $RUN_DIR/smtp/cert.pem. Mail goes
# to $RUN_DIR/smtp/mail/<n>.eml, one JSON line per mail to $RUN_DIR/smtp/received.jsonl (emptied
# at each start). Recipients at reject.invalid get 550, at tempfail.invalid 451. `env` prints the
# SMTP_* variables the notification service reads.
source "$(dirname "$0")/common.sh"

VERSION=1.4.6
PORT=${SMTP_PORT:-2525}
TLS_PORT=$((PORT + 1))
USER_NAME=dither
PASSWORD=dither-mail
DIR=$RUN_DIR/smtp
VENV=$CACHE_DIR/aiosmtpd-$VERSION
SINK=$INFRA_ROOT/scripts/infra/smtp_sink.py
PID=$DIR/smtp.pid

install() {
  [[ -f $VENV/.complete ]] && return 0
  exec 9>"$CACHE_DIR/aiosmtpd.lock"
  flock 9
  if [[ -f $VENV/.complete ]]; then
    exec 9>&-
    return 0
  fi
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || die "smtp: $python is not installed (scripts/setup.sh installs it)"
  log "smtp: installing aiosmtpd $VERSION into $VENV (once)"
  rm -rf "$VENV"
  "$python" -m venv "$VENV" >"$CACHE_DIR/aiosmtpd-install.log" 2>&1 ||
    die "smtp: python3 -m venv failed (Debian: apt-get install python3-venv), see $CACHE_DIR/aiosmtpd-install.log"
  "$VENV/bin/pip" install --disable-pip-version-check -q "aiosmtpd==$VERSION" \
    >>"$CACHE_DIR/aiosmtpd-install.log" 2>&1 ||
    die "smtp: pip install aiosmtpd==$VERSION failed, see $CACHE_DIR/aiosmtpd-install.log"
  touch "$VENV/.complete"
  exec 9>&- # the server must not inherit the lock
}

certificate() {
  [[ -s $DIR/cert.pem && -s $DIR/key.pem ]] && return 0
  command -v openssl >/dev/null || die "smtp: openssl is not installed"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >>"$DIR/server.log" 2>&1 ||
    die "smtp: openssl could not make a certificate, see $DIR/server.log"
}

start() {
  if pid_alive "$PID" smtp_sink.py; then
    log "smtp: already running on port $PORT"
    return 0
  fi
  install
  mkdir -p "$DIR"
  certificate
  port_open "$PORT" && die "smtp: port $PORT is taken by another process"
  port_open "$TLS_PORT" && die "smtp: port $TLS_PORT is taken by another process"
  rm -rf "$DIR/mail" "$DIR/received.jsonl"
  nohup "$VENV/bin/python" "$SINK" --port "$PORT" --tls-port "$TLS_PORT" --dir "$DIR" \
    --cert "$DIR/cert.pem" --key "$DIR/key.pem" --user "$USER_NAME" --password "$PASSWORD" \
    >>"$DIR/server.log" 2>&1 </dev/null &
  echo $! >"$PID"
  wait_port "$PORT" 30 "$(cat "$PID")" && wait_port "$TLS_PORT" 10 "$(cat "$PID")" ||
    die "smtp: the SMTP sink did not start, see $DIR/server.log"
  log "smtp: ready on 127.0.0.1:$PORT (STARTTLS) and :$TLS_PORT (TLS), aiosmtpd $VERSION, mail in $DIR/mail"
}

stop() {
  if pid_alive "$PID" smtp_sink.py; then
    stop_pid "$PID" 10 smtp_sink.py
    log "smtp: stopped"
  fi
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) if pid_alive "$PID" smtp_sink.py; then echo "smtp: running on port $PORT"; else echo "smtp: stopped"; exit 1; fi ;;
  env)
    echo "SMTP_HOST=127.0.0.1"
    echo "SMTP_PORT=$PORT"
    echo "SMTP_USER=$USER_NAME"
    echo "SMTP_PASSWORD=$PASSWORD"
    echo "SMTP_SECURITY=starttls"
    echo "SMTP_CA_FILE=$DIR/cert.pem"
    ;;
  *) die "usage: smtp.sh install|start|stop|status|env" ;;
esac
