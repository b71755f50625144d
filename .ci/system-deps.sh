#!/usr/bin/env bash
# System packages the browser and poster tests need (tests/test_webwall.py, tests/test_e2e_poster.py):
# headless Chromium, a Chinese font, poppler's pdftoppm/pdftotext; and PostgreSQL (server and client
# programs: initdb, pg_ctl, pg_dump, pg_restore, psql) for the suite's PostgreSQL run (tests/pg.py)
# and backups. Installs only what is missing; quiet, non-interactive, safe to run again.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
command -v fc-match >/dev/null 2>&1 || need+=(fontconfig)
# The server's programs are not on PATH (Debian keeps them in /usr/lib/postgresql/<version>/bin).
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && command -v pg_dump >/dev/null 2>&1 || need+=(postgresql)
if ! { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh-cn file | grep -q .; }; then
    need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need[*]}; run as root to install them" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system-deps: installed ${need[*]}"
