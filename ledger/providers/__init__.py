"""Issuer providers: the certificate authorities certledger orders from."""
