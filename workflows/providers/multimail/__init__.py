"""A mailbox at MultiMail (multimail.dev): mailgate's own REST client and holds."""
