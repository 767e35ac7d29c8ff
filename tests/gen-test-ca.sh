#!/bin/sh
# Generate throwaway TLS material for the HTTPS tests into DIR (created if
# missing; existing files are replaced):
#   ca.pem, ca.key                 a test CA
#   server.pem, server.key         signed by it, for localhost, 127.0.0.1 and ::1
#   wrong-host.pem, wrong-host.key signed by it, for wrong.example only
#   other-ca.pem, other-ca.key     a second CA that signed nothing here
# EC P-256 keys, valid for two days, no passphrases, no prompts.
# Usage: sh tests/gen-test-ca.sh DIR
set -eu
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
dir=$1
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl is not installed" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

# Our own minimal configuration, so the system's openssl.cnf (or
# OPENSSL_CONF) adds nothing and asks nothing.
cat >gen.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[wrong_host]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example
EOF

# run a command, showing what it wrote to stderr only if it fails
quiet() {
	"$@" 2>gen.err || { cat gen.err >&2; exit 1; }
}

key() {
	quiet openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# ca NAME SUBJECT: a self-signed CA certificate NAME.pem with key NAME.key
ca() {
	key "$1.key"
	openssl req -config gen.cnf -new -x509 -days 2 -key "$1.key" -subj "$2" \
		-extensions ca -out "$1.pem"
}

# leaf NAME SUBJECT SECTION SERIAL: NAME.pem signed by ca.pem
leaf() {
	key "$1.key"
	openssl req -config gen.cnf -new -key "$1.key" -subj "$2" -out "$1.csr"
	quiet openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$4" -days 2 \
		-extfile gen.cnf -extensions "$3" -out "$1.pem"
	rm -f "$1.csr"
}

ca ca "/O=invsync tests/CN=invsync test CA"
ca other-ca "/O=invsync tests/CN=invsync other test CA"
leaf server "/CN=localhost" server 2
leaf wrong-host "/CN=wrong.example" wrong_host 3
rm -f gen.cnf gen.err
# the certificates are public; the keys stay private (umask above)
chmod 644 ca.pem other-ca.pem server.pem wrong-host.pem
