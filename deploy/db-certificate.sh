#!/bin/sh
# A certificate authority and a server certificate for the compose
# PostgreSQL, so tokenvault verifies the database it talks to
# (sslmode=verify-full). Usage:
#   deploy/db-certificate.sh [DIR] [HOST]
# writes DIR/db_ca.pem (the authority tokenvault trusts), DIR/db_server.crt
# and DIR/db_server.key (the server's, for HOST; default DIR ./secrets,
# HOST postgres: the compose service name). The authority's private key is
# deleted once the certificate is signed: run the script again to renew
# both (valid for 825 days). Needs openssl.
set -eu
dir=${1:-./secrets}
host=${2:-postgres}
mkdir -p "$dir"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
  -subj "/CN=tokenvault database CA" \
  -keyout "$work/ca.key" -out "$dir/db_ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=$host" -keyout "$dir/db_server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' "$host" >"$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$dir/db_ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -CAserial "$work/ca.srl" -days 825 -extfile "$work/server.ext" \
  -out "$dir/db_server.crt" 2>/dev/null
chmod 644 "$dir/db_ca.pem" "$dir/db_server.crt"
chmod 600 "$dir/db_server.key"
echo "wrote $dir/db_ca.pem, $dir/db_server.crt and $dir/db_server.key (for $host)"
