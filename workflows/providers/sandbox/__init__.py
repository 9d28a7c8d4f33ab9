"""The embedded mail sandbox: a SQLite mail store on this machine, its index and search."""
