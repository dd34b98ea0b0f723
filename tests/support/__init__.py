"""Test support: real servers and providers the tests start themselves."""
