"""The one-port listener: TLS with ALPN (or, with --plaintext, h2c sniffing) in front of the HTTP app
and the gRPC server, and the deadline an HTTP/1.1 request has to send its headers."""
