"""Email format code: addresses, MIME, parsing, HTML to text, threading, search syntax."""
