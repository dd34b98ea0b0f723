"""Key custody: where private keys live and how they are used."""
