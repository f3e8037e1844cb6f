"""pytest set-up for tests/atomics.

test_atomics.py imports tests/dist/test_dist.py for its --stats readers
and environment filter; that module marks its own tests `multinode`, a
marker tests/dist/conftest.py registers.  Registering it here too keeps
pytest from warning about it when only this directory runs.
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "multinode: needs a cluster of 2 or more nodes (tests/dist's marker)")
