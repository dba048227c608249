#!/bin/sh
# Makes a throw-away CA and a sender and a receiver certificate for trying mutual TLS:
#   tools/make-test-certs.sh [DIR]        (default DIR: ./tls-test)
# Then:
#   kvmpresync receive ... --tls-cert DIR/receiver.crt --tls-key DIR/receiver.key --tls-ca DIR/ca.crt
#   kvmpresync run --presync-to ... --tls-cert DIR/sender.crt --tls-key DIR/sender.key --tls-ca DIR/ca.crt
# Keys are ECDSA P-256, written with umask 077 (mode 600, as kvmpresync requires). For production, use your own PKI.
set -eu
dir=${1:-tls-test}
if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl not found; installing it (Debian: apt-get install openssl)" >&2
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
fi
umask 077
mkdir -p "$dir"
days=365

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
    -subj "/CN=KvmPresync test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

for side in sender receiver; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
        -subj "/CN=kvmpresync-$side" -keyout "$dir/$side.key" -out "$dir/$side.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=DNS:kvmpresync-$side" > "$dir/$side.ext"
    openssl x509 -req -in "$dir/$side.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days "$days" -sha256 -extfile "$dir/$side.ext" -out "$dir/$side.crt" 2>/dev/null
    rm -f "$dir/$side.csr" "$dir/$side.ext"
done
rm -f "$dir/ca.srl"
chmod 644 "$dir/ca.crt" "$dir/sender.crt" "$dir/receiver.crt"
openssl verify -CAfile "$dir/ca.crt" "$dir/sender.crt" "$dir/receiver.crt"
echo "made $dir/{ca,sender,receiver}.crt and their .key files (mode 600); keep $dir/ca.key offline or delete it"
