"""Keys and tokens: the data folder (local CA, TLS certificate, signing key), the JWTs signed with
that key, and the custom token claims configured like Dashboard > Token Claims."""
