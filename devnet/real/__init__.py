"""The real testbed (issue 10): real components built by `make testbed`, run on loopback for tests."""
