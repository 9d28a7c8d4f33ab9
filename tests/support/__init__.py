"""What tests and benchmarks share: stacks, peers, waits, ports, signing and corpora.

Fixtures live in the conftest.py files, except the real mail peers' (peers/fixtures.py), which the
few test modules that need Dovecot import; everything else a test module imports lives here.
"""
