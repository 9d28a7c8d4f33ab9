"""Signatures, proofs and encryption: what lets mailgate tell its own requests, links and mail apart."""
