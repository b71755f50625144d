"""Services hold the rules; they take plain values, check rights from the database and return plain results."""
