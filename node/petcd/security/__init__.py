"""TLS for the client and peer ports, as etcd's transport.TLSInfo: certificate files checked at start
with errors naming the flag (`certs`), self-signed certificates for --auto-tls/--peer-auto-tls
(`selfcert`), SSL contexts for listeners and dialers that pick up rewritten files without a restart
(`contexts`), and the identity a client certificate carries (`identity`)."""
