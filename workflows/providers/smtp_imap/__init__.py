"""Any mailbox on an SMTP server and an IMAP server, with a local index of the IMAP mailbox."""
