"""What tests and benchmarks share: stacks, peers, waits, ports, signing and corpora.

Fixtures stay in the conftest.py files; everything a test module imports lives here.
"""
