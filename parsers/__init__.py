"""HTTP/1.x parsing: framing, transactions, endpoint templating."""
